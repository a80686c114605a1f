#!/usr/bin/env bash
# Pack the Python environment walsspark's executors need (numpy and pyarrow, at the
# versions of the driver's environment) into a tar.gz for spark-submit --archives, as
# Spark's Python package management guide describes:
#
#     scripts/pack-env.sh [OUT.tar.gz]        (default: build/walsspark-env.tar.gz)
#     spark-submit --archives OUT.tar.gz#environment \
#         --conf spark.pyspark.python=./environment/bin/python ...
#
# ./spark-submit.sh --pack-env runs this and passes those options. The archive holds a
# virtual environment made by venv-pack: its bin/python links to the interpreter this
# environment was made from (WALSSPARK_ENV_PYTHON, default the driver's base Python; same
# minor version as the driver's, or cloudpickled functions will not load), which must exist
# at the same path on the executors; on machines without it, pack a conda environment
# with conda-pack instead (it carries the interpreter). walsspark itself is not in the
# archive: spark-submit ships it with --py-files. Reruns reuse an archive whose recorded
# versions still match.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$here/build/walsspark-env.tar.gz}"
driver_python="${PYSPARK_PYTHON:-$here/.venv/bin/python}"
if [[ ! -x "$driver_python" ]]; then
    echo "walsspark: error: no Python with walsspark at $driver_python: run ./scripts/bootstrap.sh" >&2
    exit 2
fi
base_python="${WALSSPARK_ENV_PYTHON:-$("$driver_python" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')}"
requirements=$("$driver_python" -c 'import numpy, pyarrow; print(f"numpy=={numpy.__version__} pyarrow=={pyarrow.__version__}")')
stamp="$out.requirements"
if [[ -f "$out" && -f "$stamp" && "$(cat "$stamp")" == "$requirements $base_python" ]]; then
    echo "executor environment up to date: $out ($requirements)"
    exit 0
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/walsspark-env.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "packing the executors' Python environment ($requirements, $("$base_python" --version)) into $out"
"$base_python" -m venv "$work/env"
# shellcheck disable=SC2086 # the requirements are two words on purpose
if ! "$work/env/bin/python" -m pip install --quiet --disable-pip-version-check \
    $requirements venv-pack >"$work/pip.log" 2>&1; then
    cat "$work/pip.log" >&2
    echo "walsspark: error: could not install $requirements into the executor environment" >&2
    exit 2
fi
mkdir -p "$(dirname "$out")"
rm -f "$out" "$stamp"
# Packed beside the environment, then moved: an interrupted run leaves no half archive.
"$work/env/bin/venv-pack" --quiet -p "$work/env" -o "$work/env.tar.gz"
mv "$work/env.tar.gz" "$out"
echo "$requirements $base_python" > "$stamp"
echo "ready: $out ($(du -h "$out" | cut -f1))"
