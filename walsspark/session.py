"""Spark session set-up: one place for the settings every walsspark job relies on.

Spark settings reach a run the Spark way: ``spark-defaults.conf`` (``SPARK_CONF_DIR``),
``--conf KEY=VALUE`` (on the console script as on ``spark-submit``), or the session that
spark-submit, a notebook or Databricks already started. A session walsspark starts itself
gets walsspark's defaults first (one BLAS thread per task, a quiet log4j configuration,
no console progress bar) and the user's settings over them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources

from walsspark import interrupts
from walsspark.errors import InputError
from walsspark.paths import (
    PathResolver,
    connect_server_is_here,
    default_fs_from,
    resolver_from_settings,
)
from walsspark.storage import Storage

log = logging.getLogger("walsspark")

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
LOG4J_FILE = "log4j2.properties"
JAVA_OPTIONS_KEY = "spark.driver.extraJavaOptions"


def parse_conf(values: list[str] | None) -> dict[str, str]:
    """``--conf KEY=VALUE`` options as a dict (later ones win, as in spark-submit)."""
    settings: dict[str, str] = {}
    for value in values or []:
        key, sep, setting = value.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--conf expects KEY=VALUE, got {value!r}")
        settings[key.strip()] = setting
    return settings


def spark_defaults(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings of the ``spark-defaults.conf`` that spark-submit will load
    (``SPARK_CONF_DIR``, else ``SPARK_HOME/conf``)."""
    env = os.environ if env is None else env
    directory = env.get("SPARK_CONF_DIR") or (
        os.path.join(env["SPARK_HOME"], "conf") if env.get("SPARK_HOME") else None
    )
    settings: dict[str, str] = {}
    if not directory:
        return settings
    try:
        with open(os.path.join(directory, "spark-defaults.conf"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return settings
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        match = re.match(r"^(\S+?)\s*[=:\s]\s*(.*)$", line)
        if match:
            settings[match.group(1)] = match.group(2).strip()
    return settings


def worker_environment() -> dict[str, str]:
    """Environment the Python workers need: one BLAS thread per task."""
    return {name: os.environ.get(name, "1") for name in BLAS_THREAD_VARIABLES}


def is_connect(spark) -> bool:
    """True for a Spark Connect session (no JVM in this process, no SparkContext)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


@dataclass
class SparkSetup:
    """How a command run gets its Spark session, and where its paths live.

    Attributes
    ----------
    master : str, optional
        ``--master`` for a session walsspark starts (else ``WALSSPARK_MASTER``, else
        ``local[*]``); ignored when spark-submit or a notebook provides the session.
    settings : dict
        ``--conf`` settings.
    remote : str, optional
        Spark Connect URL (default ``SPARK_REMOTE``).
    """

    master: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    remote: str | None = None
    app_name: str = "walsspark"

    def __post_init__(self) -> None:
        self.remote = self.remote or os.environ.get("SPARK_REMOTE") or None

    def all_settings(self) -> dict[str, str]:
        return {**spark_defaults(), **self.settings}

    def storage(self) -> Storage:
        """Path handling before Spark starts: driver-local paths only."""
        return Storage(resolver_from_settings(self.all_settings(), self.remote))

    def start_checked(self, check_paths: Callable[[Storage], None]) -> tuple[object, Storage]:
        """:meth:`start`, with ``check_paths`` run twice: before Spark starts (on the paths
        that are the driver's own: a bad local path is reported at once, not after the
        session's start-up) and once the session can see every path."""
        check_paths(self.storage())
        spark, storage = self.start()
        check_paths(storage)
        return spark, storage

    def start(self) -> tuple[object, Storage]:
        """Start (or join) the session; log what Spark runs on; path handling with it."""
        from walsspark.cluster import log_cluster, match_shuffle_partitions

        spark = get_or_create_session(self.master, self.app_name, self.remote, self.settings)
        # A new SparkContext installs pyspark's SIGINT handler over the command line's.
        interrupts.keep_installed()
        match_shuffle_partitions(spark, log_cluster(spark), self.all_settings())
        return spark, Storage(resolver_for_session(spark, self.all_settings(), self.remote), spark)


def get_or_create_session(
    master: str | None = None,
    app_name: str = "walsspark",
    remote: str | None = None,
    settings: Mapping[str, str] | None = None,
):
    """Return the active Spark session, or start one configured for walsspark.

    Parameters
    ----------
    master : str, optional
        Master URL for a new classic session (``local[*]`` when neither this,
        ``WALSSPARK_MASTER``, ``remote`` nor spark-submit says otherwise).
    app_name : str
        Application name of a new session.
    remote : str, optional
        Spark Connect URL (``sc://host:port``, or ``local[2]`` for a Connect server started
        here); default ``SPARK_REMOTE``. No local Java is needed for a remote server.
    settings : mapping, optional
        Spark settings (``--conf``); on a session that is already running only the runtime
        ones can change (a warning names any other).

    Returns
    -------
    SparkSession
        A classic or a Spark Connect session.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError(
            "pyspark is not installed: pip install 'walsspark[spark]', or run walsspark "
            "where Spark provides it (spark-submit, Databricks)"
        ) from None

    settings = dict(settings or {})
    remote = remote or os.environ.get("SPARK_REMOTE") or None
    active = SparkSession.getActiveSession()
    if active is not None and (remote is None or is_connect(active)):
        apply_runtime_settings(active, settings)
        return active
    provided = "PYSPARK_GATEWAY_PORT" in os.environ or "DATABRICKS_RUNTIME_VERSION" in os.environ
    if remote is None and not provided:
        check_java()
    # Local Python workers inherit this process's environment through the JVM.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for name, value in worker_environment().items():
        os.environ.setdefault(name, value)
    builder = SparkSession.builder.appName(app_name)
    if remote is not None:
        builder = builder.remote(remote)
        local_jvm = connect_server_is_here(remote)
        master = remote if local_jvm else None
    elif provided:
        # spark-submit, a notebook or Databricks gives the master and settings.
        local_jvm, master = False, None
    else:
        local_jvm = True
        master = master or os.environ.get("WALSSPARK_MASTER", "local[*]")
        builder = builder.master(master)
    if local_jvm:
        for key, value in new_session_defaults(master, settings).items():
            builder = builder.config(key, value)
    for key, value in settings.items():
        builder = builder.config(key, value)
    with warnings.catch_warnings():
        # pyspark starts a local Connect server with every setting, then sets them all
        # again on the client session, warning for each one only a server start can take.
        warnings.filterwarnings("ignore", message=r"Failed to set .*CANNOT_MODIFY_CONFIG")
        spark = builder.getOrCreate()
    apply_runtime_settings(spark)
    return spark


def new_session_defaults(master: str | None, settings: Mapping[str, str]) -> dict[str, str]:
    """walsspark's settings for a JVM it starts itself (the user's settings win)."""
    defaults = {f"spark.executorEnv.{name}": value for name, value in worker_environment().items()}
    defaults["spark.ui.showConsoleProgress"] = "false"
    defaults["spark.driver.memory"] = os.environ.get("WALSSPARK_DRIVER_MEMORY", "4g")
    user = {**spark_defaults(), **settings}
    if JAVA_OPTIONS_KEY not in user:
        # One quiet log4j configuration instead of Spark's default profile (its banner,
        # the loopback-hostname and UI-port notices, Hadoop's native-library note).
        config = resources.files("walsspark").joinpath(LOG4J_FILE)
        defaults[JAVA_OPTIONS_KEY] = f"-Dlog4j2.configurationFile=file:{config}"
    if master and master.startswith("local"):
        # Nothing needs to reach a local driver from another host: bind to loopback.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        defaults["spark.sql.shuffle.partitions"] = str(max(2, local_cores(master)))
    return defaults


def local_cores(master: str) -> int:
    """Cores of a ``local``, ``local[N]``, ``local[*]`` or ``local[N,F]`` master."""
    match = re.match(r"^local(?:\[(\*|\d+)(?:,\s*\d+)?\])?$", master.strip())
    if match is None or match.group(1) in (None, ""):
        return 1
    return os.cpu_count() or 1 if match.group(1) == "*" else int(match.group(1))


def apply_runtime_settings(spark, settings: Mapping[str, str] | None = None) -> None:
    """Set the SQL settings walsspark relies on, then the user's (allowed on Spark Connect
    too). A setting a running session cannot take gets one warning line."""
    for key, value in ARROW_SETTINGS.items():
        try:
            spark.conf.set(key, value)
        except Exception:  # noqa: BLE001 - some managed runtimes forbid setting a key
            pass
    for key, value in (settings or {}).items():
        try:
            if spark.conf.get(key, None) == value:
                continue
            spark.conf.set(key, value)
        except Exception:  # noqa: BLE001 - static settings, or forbidden by the runtime
            log.warning(
                "cannot change %s in the running Spark session: pass it to spark-submit "
                "(--conf) or set it in the cluster's configuration",
                key,
            )


def resolver_for_session(
    spark, settings: Mapping[str, str] | None = None, remote: str | None = None
) -> PathResolver:
    """Where paths live once the session runs: its own default file system, and whether
    its driver shares this process's disk."""
    settings = dict(settings if settings is not None else spark_defaults())
    remote = remote or os.environ.get("SPARK_REMOTE") or None
    default_fs = None
    if is_connect(spark):
        here = remote is not None and connect_server_is_here(remote)
    else:
        here = True
        try:  # the session's Hadoop configuration (core-site.xml included), when reachable
            default_fs = spark.sparkContext._jsc.hadoopConfiguration().get("fs.defaultFS")
        except Exception:  # noqa: BLE001 - no JVM access on some managed runtimes
            default_fs = None
    if not default_fs:
        try:
            default_fs = spark.conf.get("spark.hadoop.fs.defaultFS", None)
        except Exception:  # noqa: BLE001 - not every key is readable on every runtime
            default_fs = None
    return PathResolver(default_fs or default_fs_from(settings), driver_is_here=here)


def storage_for_session(spark) -> Storage:
    """Path handling for a session started elsewhere (library callers, tests)."""
    return Storage(resolver_for_session(spark), spark)


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
