#!/usr/bin/env bash
# Run a walsspark subcommand through spark-submit:
#
#     ./spark-submit.sh [--master URL] train --input PATH --output MODEL_DIR [options]
#
# The master is local[*] unless --master, WALSSPARK_MASTER or SPARK_MASTER says otherwise.
# The library is shipped to the executors as a zip (--py-files); its dependencies (numpy,
# pyarrow) must be installed where the executors run Python: on a cluster, ship a packed
# virtual environment with --archives (see README.md, "Running on a cluster").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

master="${WALSSPARK_MASTER:-${SPARK_MASTER:-local[*]}}"
if [[ "${1:-}" == "--master" ]]; then
    master="$2"
    shift 2
fi
if [[ $# -eq 0 ]]; then
    echo "usage: $0 [--master URL] SUBCOMMAND [options]   (e.g. train --config conf/demo.toml)" >&2
    exit 2
fi

python="${PYSPARK_PYTHON:-$here/.venv/bin/python}"
if [[ ! -x "$python" ]]; then
    echo "walsspark: error: no Python with walsspark at $python: run ./scripts/bootstrap.sh" >&2
    exit 2
fi
spark_home="${SPARK_HOME:-$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"

build="$here/build"
mkdir -p "$build"
rm -f "$build/walsspark.zip"
(cd "$here" && "$python" -m zipfile -c "$build/walsspark.zip" walsspark >/dev/null)

export PYSPARK_PYTHON="$python"
# Extra spark-submit options (e.g. --archives venv.tar.gz#environment --conf ...) come
# from WALSSPARK_SUBMIT_ARGS; --load-spark-defaults keeps the cluster's own defaults too.
read -r -a extra_args <<< "${WALSSPARK_SUBMIT_ARGS:-}"
exec "$spark_home/bin/spark-submit" \
    --master "$master" \
    --properties-file "$here/conf/spark-defaults.conf" \
    --load-spark-defaults \
    ${extra_args[@]+"${extra_args[@]}"} \
    --conf "spark.pyspark.python=$python" \
    --driver-java-options "-Dlog4j2.configurationFile=file:$here/conf/log4j2.properties" \
    --py-files "$build/walsspark.zip" \
    "$here/jobs/walsspark_job.py" "$@"
