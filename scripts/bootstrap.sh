#!/usr/bin/env bash
# Set up walsspark in ./.venv: a virtual environment with the package and its dependencies
# (pyspark, numpy, pyarrow). `--test` adds the test tools. Checks for Java 17+ first,
# because Spark 4 cannot start without it. Safe to run again: it only installs what is new.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="[spark]"
if [[ "${1:-}" == "--test" ]]; then
    extras="[spark,test]"
fi

java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
if ! command -v "$java_bin" >/dev/null 2>&1; then
    echo "walsspark: error: no Java found. Spark 4 needs Java 17 or 21: install one" \
        "(e.g. 'sudo apt-get install openjdk-17-jre-headless', 'brew install openjdk@17'," \
        "or https://adoptium.net) and put it on PATH or set JAVA_HOME" >&2
    exit 2
fi
java_version=$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -n 1)
major=${java_version%% *}
if [[ "$major" == "1" ]]; then major=${java_version##* }; fi
if [[ -z "$major" || "$major" -lt 17 ]]; then
    echo "walsspark: error: found Java ${major:-of unknown version}. Spark 4 needs Java 17 or 21:" \
        "install one (e.g. 'sudo apt-get install openjdk-17-jre-headless') and set JAVA_HOME" >&2
    exit 2
fi

python_bin="${PYTHON:-python3}"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "walsspark: error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    exit 2
fi
if [[ ! -x .venv/bin/python ]]; then
    echo "creating .venv with $("$python_bin" --version)"
    "$python_bin" -m venv .venv
fi
echo "installing walsspark${extras} into .venv (the first time downloads pyspark, ~450 MB)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
echo "ready: .venv/bin/walsspark"
