#!/usr/bin/env bash
# Run a walsspark subcommand through spark-submit:
#
#     ./spark-submit.sh [SPARK-SUBMIT OPTIONS] [--pack-env | --env-archive FILE] \
#         SUBCOMMAND [walsspark options]
#
#     ./spark-submit.sh train --config conf/demo.toml
#     ./spark-submit.sh --master spark://host:7077 --pack-env train --input hdfs:///r --output hdfs:///m
#
# SPARK-SUBMIT OPTIONS (--master URL, --conf KEY=VALUE, --deploy-mode, --executor-memory,
# --num-executors, ...) go to spark-submit as they are; a --conf KEY=VALUE after the
# subcommand goes there too, so that settings only a starting application can take (memory,
# the checkpoint directory) take effect. The master is local[*] unless --master,
# WALSSPARK_MASTER or SPARK_MASTER says otherwise. conf/spark-defaults.conf is loaded, and
# the cluster's own spark-defaults.conf after it. Your own --py-files and --archives are
# shipped beside walsspark's; your spark.pyspark.python or driver Java options replace the
# script's.
#
# The library goes to the executors as a zip (--py-files). Their Python needs numpy and
# pyarrow: where the cluster image lacks them, --pack-env packs an environment with them
# (scripts/pack-env.sh, once) and ships it (--archives ...#environment), and the executors
# run ./environment/bin/python; --env-archive FILE ships an archive packed elsewhere.
# WALSSPARK_SUBMIT_ARGS adds further spark-submit options.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

usage() {
    echo "usage: $0 [--master URL] [--conf KEY=VALUE]... [--pack-env | --env-archive FILE]" \
        "SUBCOMMAND [options]   (e.g. train --config conf/demo.toml)" >&2
    exit 2
}

master="${WALSSPARK_MASTER:-${SPARK_MASTER:-local[*]}}"
deploy_mode=client
archive=""
pack=0
user_py_files=""
user_archives=""
user_java_options=""
submit_args=()

# One spark-submit option and its value (the script merges the ones it sets itself).
take_option() {
    case "$1" in
        --master) master="$2" ;;
        --env-archive) archive="$2" ;;
        --deploy-mode) deploy_mode="$2"; submit_args+=("$1" "$2") ;;
        --py-files) user_py_files="$2" ;;
        --archives) user_archives="$2" ;;
        --driver-java-options) user_java_options="$2" ;;
        --conf) take_conf "$2" ;;
        *) submit_args+=("$1" "$2") ;;
    esac
}
user_python_conf=0
take_conf() {
    case "$1" in
        spark.pyspark.python=* | spark.pyspark.driver.python=*) user_python_conf=1 ;;
        spark.driver.extraJavaOptions=*) user_java_options="${1#*=}"; return ;;
    esac
    submit_args+=(--conf "$1")
}

while [[ $# -gt 0 && "$1" == --* ]]; do
    case "$1" in
        --pack-env) pack=1; shift ;;
        --verbose | --supervise) submit_args+=("$1"); shift ;;
        --help | -h) usage ;;
        --*=*) take_option "${1%%=*}" "${1#*=}"; shift ;;
        *)
            [[ $# -ge 2 ]] || usage
            take_option "$1" "$2"
            shift 2
            ;;
    esac
done
[[ $# -gt 0 ]] || usage

# The walsspark arguments; every --conf among them goes to spark-submit.
job_args=()
while [[ $# -gt 0 ]]; do
    if [[ "$1" == "--conf" && $# -ge 2 ]]; then
        take_conf "$2"
        shift 2
    elif [[ "$1" == --conf=* ]]; then
        take_conf "${1#--conf=}"
        shift
    else
        job_args+=("$1")
        shift
    fi
done

python="${PYSPARK_PYTHON:-$here/.venv/bin/python}"
if [[ ! -x "$python" ]]; then
    echo "walsspark: error: no Python with walsspark at $python: run ./scripts/bootstrap.sh" >&2
    exit 2
fi
spark_home="${SPARK_HOME:-$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"

build="$here/build"
mkdir -p "$build"
zip="$build/walsspark.zip"
# Built aside and moved into place: a submission running beside this one never reads a
# half-written zip.
partial="$(mktemp "$build/walsspark.zip.XXXXXX")"
rm -f "$partial"
(cd "$here" && "$python" -m zipfile -c "$partial" walsspark >/dev/null)
mv -f "$partial" "$zip"

if [[ "$pack" == 1 && -z "$archive" ]]; then
    archive="$build/walsspark-env.tar.gz"
    PYSPARK_PYTHON="$python" "$here/scripts/pack-env.sh" "$archive" >&2
fi
if [[ -n "$archive" && "$master" == local* ]]; then
    # Local tasks run where the driver runs, with the driver's Python.
    echo "walsspark: note: $master runs tasks with $python; the environment archive is not used" >&2
    archive=""
fi
if [[ -n "$archive" ]]; then
    if [[ ! -f "$archive" ]]; then
        echo "walsspark: error: environment archive not found: $archive" >&2
        exit 2
    fi
    user_archives="${user_archives:+$user_archives,}$archive#environment"
    if [[ "$user_python_conf" == 0 ]]; then
        submit_args+=(--conf spark.pyspark.python=./environment/bin/python)
        if [[ "$deploy_mode" == cluster ]]; then
            # The driver runs in the cluster too (YARN, Kubernetes): from the archive as well.
            submit_args+=(--conf spark.pyspark.driver.python=./environment/bin/python)
        else
            submit_args+=(--conf "spark.pyspark.driver.python=$python")
        fi
    fi
elif [[ "$user_python_conf" == 0 ]]; then
    submit_args+=(--conf "spark.pyspark.python=$python")
fi
if [[ -n "$user_archives" ]]; then
    submit_args+=(--archives "$user_archives")
fi
if [[ "$master" == local* || "$master" == spark://127.0.0.1:* || "$master" == spark://localhost:* ]]; then
    # Everything runs on this machine: bind to loopback (no "hostname resolves to a
    # loopback address" notice, nothing reachable from outside).
    export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
fi

export PYSPARK_PYTHON="$python"
read -r -a extra_args <<< "${WALSSPARK_SUBMIT_ARGS:-}"
exec "$spark_home/bin/spark-submit" \
    --master "$master" \
    --properties-file "$here/conf/spark-defaults.conf" \
    --load-spark-defaults \
    ${extra_args[@]+"${extra_args[@]}"} \
    "${submit_args[@]}" \
    --driver-java-options "${user_java_options:--Dlog4j2.configurationFile=file:$here/walsspark/log4j2.properties}" \
    --py-files "$zip${user_py_files:+,$user_py_files}" \
    "$here/jobs/walsspark_job.py" "${job_args[@]}"
