"""Spark session set-up: one place for the settings every walsspark job relies on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from pyspark.sql import SparkSession

from walsspark.errors import InputError

JAVA_HELP = (
    "Spark 4 needs Java 17 or 21: install one (e.g. 'apt-get install openjdk-17-jre-headless', "
    "'brew install openjdk@17', or https://adoptium.net) and put it on PATH or set JAVA_HOME"
)

# Each Spark task runs one block solve; with several tasks per executor a multi-threaded
# BLAS per task oversubscribes the cores (measured on 2 cores: two tasks with 2-thread
# OpenBLAS each were slower than two single-threaded tasks). Parallelism comes from tasks.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# Arrow batches carry whole blocks (one row per block with binary columns): the record limit
# matters only for row-per-id tables (factor rows, evaluation), where 10k rows is modest.
ARROW_SETTINGS = {
    "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def worker_environment() -> dict[str, str]:
    """Environment the Python workers need: one BLAS thread per task."""
    return {name: os.environ.get(name, "1") for name in BLAS_THREAD_VARIABLES}


def get_or_create_session(
    master: str | None = None, app_name: str = "walsspark", remote: str | None = None
) -> SparkSession:
    """Return the active Spark session, or start one configured for walsspark.

    Parameters
    ----------
    master : str, optional
        Master URL for a new classic session (``local[*]`` when neither this, ``remote``
        nor spark-submit says otherwise).
    app_name : str
        Application name of a new session.
    remote : str, optional
        Spark Connect URL (``sc://host:port`` or ``local[2]`` for a local Connect server);
        default ``SPARK_REMOTE`` from the environment. No local Java is needed for a remote
        server.

    Returns
    -------
    SparkSession
        A classic or a Spark Connect session.
    """
    remote = remote or os.environ.get("SPARK_REMOTE") or None
    active = SparkSession.getActiveSession()
    if active is not None and remote is None:
        apply_runtime_settings(active)
        return active
    if remote is None:
        check_java()
    # Local Python workers inherit this process's environment through the JVM.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for name, value in worker_environment().items():
        os.environ.setdefault(name, value)
    builder = SparkSession.builder.appName(app_name)
    if remote is not None:
        builder = builder.remote(remote)
    elif master is None and "PYSPARK_GATEWAY_PORT" in os.environ:
        # Under spark-submit the master and settings come from spark-submit itself.
        pass
    else:
        builder = builder.master(master or os.environ.get("WALSSPARK_MASTER", "local[*]"))
        for name, value in worker_environment().items():
            builder = builder.config(f"spark.executorEnv.{name}", value)
        builder = (
            builder.config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(max(2, os.cpu_count() or 2)))
            .config("spark.driver.memory", os.environ.get("WALSSPARK_DRIVER_MEMORY", "4g"))
        )
    spark = builder.getOrCreate()
    apply_runtime_settings(spark)
    return spark


def apply_runtime_settings(spark: SparkSession) -> None:
    """Set the SQL settings walsspark relies on (allowed on Spark Connect too)."""
    for key, value in ARROW_SETTINGS.items():
        try:
            spark.conf.set(key, value)
        except Exception:  # noqa: BLE001 - some managed runtimes forbid setting a key
            pass


def java_major_version() -> int | None:
    """Major version of the Java that Spark will start, or None if there is none."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_..."
    return int(match.group(2) or 0) if major == 1 else major


def check_java() -> None:
    """Raise :class:`InputError` with set-up advice when Java 17+ is missing."""
    major = java_major_version()
    if major is None:
        raise InputError(f"no Java found. {JAVA_HELP}")
    if major < 17:
        raise InputError(f"found Java {major}. {JAVA_HELP}")
