"""What Spark runs on: the master, the executors and their cores, their Python.

Defaults that scale with the cluster (block counts) come from here, from the cluster's
executors and never from the driver machine's ``os.cpu_count()``: ``spark.default.parallelism``
when set, else the number of splits Spark itself gives a ``range`` (its default
parallelism: the executors' cores on a cluster, N on ``local[N]``). Both are read through
SQL, so they work on classic Spark and on Spark Connect alike.

Before the first job on a cluster, one small job asks every task slot which Python runs
there, so a cluster whose executors lack numpy, pyarrow or walsspark itself is reported in
one line instead of a Python traceback from the middle of training.

This module imports nothing but the standard library at its top: the probe runs on the
executors before anything is known about their Python.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass

log = logging.getLogger("walsspark")

_SPLITS = re.compile(r"splits=(\d+)")
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
SPARK_DEFAULT_SHUFFLE_PARTITIONS = "200"


@dataclass
class ExecutorPython:
    """The Python one executor task slot runs (from the probe job)."""

    host: str
    workdir: str
    executable: str
    version: str
    problem: str


def conf_value(spark, key: str) -> str | None:
    """A setting of the session, or None when unset or unreadable."""
    try:
        return spark.conf.get(key, None) or None
    except Exception:  # noqa: BLE001 - not every key is readable on every runtime
        return None


def default_parallelism(spark, refresh: bool = False) -> int:
    """Task slots of the cluster: ``spark.default.parallelism``, else Spark's own default
    parallelism (the splits of a ``range``), else 2.

    The answer is kept per session; ``refresh`` asks again (the executors of a cluster
    register after the application starts, so the count grows at first)."""
    value = conf_value(spark, "spark.default.parallelism")
    if value and value.isdigit() and int(value) > 0:
        return int(value)
    # Asked at start-up (after the executors registered) and again by every layout: the
    # EXPLAIN is a query of its own (0.4 s), so a session's answer is kept.
    known = _SLOTS_BY_SESSION.get(id(spark))
    if known is not None and known[0] is spark and not refresh:
        return known[1]
    slots = _explained_parallelism(spark)
    _SLOTS_BY_SESSION[id(spark)] = (spark, slots)
    return slots


_SLOTS_BY_SESSION: dict[int, tuple[object, int]] = {}


def _explained_parallelism(spark) -> int:
    # Classic Spark knows it at hand (what range() splits by); the EXPLAIN below, for Spark
    # Connect, is two queries (about 1 s at start-up).
    try:
        return max(1, int(spark.sparkContext.defaultParallelism))
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext
        pass
    try:
        plan = "\n".join(row[0] for row in spark.sql("EXPLAIN SELECT id FROM range(2)").collect())
    except Exception:  # noqa: BLE001 - a managed runtime may refuse EXPLAIN
        plan = ""
    match = _SPLITS.search(plan)
    return max(1, int(match.group(1))) if match else 2


def executor_count(spark) -> int | None:
    """How many executors the application has (classic Spark on a cluster master), None
    where the JVM is out of reach (Spark Connect)."""
    try:
        return int(spark.sparkContext._jsc.sc().getExecutorIds().size())  # a Scala Seq
    except Exception:  # noqa: BLE001 - Spark Connect, or JVM access forbidden
        return None


def _probe(batches):
    """mapInArrow function: describe the Python of this task slot."""
    import pyarrow as pa

    for _ in batches:
        pass
    problem = ""
    for module in ("numpy", "walsspark.solver"):
        try:
            __import__(module)
        except Exception as error:  # noqa: BLE001 - report whatever breaks the import
            problem = f"{type(error).__name__}: {error}"
            break
    yield pa.RecordBatch.from_pydict(
        {
            "host": [os.uname().nodename],
            "workdir": [os.getcwd()],
            "executable": [sys.executable],
            "version": [sys.version.split()[0]],
            "problem": [problem],
        }
    )


def executor_pythons(spark, slots: int) -> list[ExecutorPython]:
    """Run the probe on ``slots`` tasks; the distinct answers.

    Raises
    ------
    InputError
        When the executors' Python cannot run walsspark (pyarrow, numpy or walsspark
        missing), naming what is missing.
    """
    from walsspark.errors import InputError, first_line

    schema = "host string, workdir string, executable string, version string, problem string"
    try:
        rows = spark.range(0, slots, 1, slots).mapInArrow(_probe, schema).distinct().collect()
    except Exception as error:  # noqa: BLE001 - the worker could not even start our code
        raise InputError(
            f"the executors' Python cannot run walsspark ({_python_problem(error)}): ship "
            "numpy, pyarrow and walsspark to them (README.md, 'Running on a cluster')"
        ) from None
    found = [ExecutorPython(**row.asDict()) for row in rows]
    broken = [python for python in found if python.problem]
    if broken:
        raise InputError(
            f"the executors' Python ({broken[0].executable}) cannot run walsspark "
            f"({first_line(RuntimeError(broken[0].problem))}): ship numpy, pyarrow and "
            "walsspark to them (README.md, 'Running on a cluster')"
        )
    return found


def _python_problem(error: BaseException) -> str:
    text = str(error)
    for pattern in (r"(ModuleNotFoundError: [^\n]*)", r"(ImportError: [^\n]*)"):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    from walsspark.errors import first_line

    return first_line(error)


def match_shuffle_partitions(spark, slots: int, user_settings) -> None:
    """One shuffle partition per task slot, unless the user chose a number.

    Spark's default of 200 gives every grouped stage 200 tasks, each starting Python work
    for a few rows at small scale: on a two-worker standalone cluster a holdout evaluation
    took 8 s per sweep with 200 partitions. walsspark's own blocks are sized separately
    (:func:`walsspark.train.default_num_blocks`); a runtime setting, so Connect takes it too.
    """
    if SHUFFLE_PARTITIONS in user_settings:
        return
    if conf_value(spark, SHUFFLE_PARTITIONS) not in (None, SPARK_DEFAULT_SHUFFLE_PARTITIONS):
        return
    try:  # set to 200 through spark-submit? (classic Spark only: its start-up settings)
        if spark.sparkContext.getConf().contains(SHUFFLE_PARTITIONS):
            return
    except Exception:  # noqa: BLE001 - Spark Connect: no SparkContext
        pass
    try:
        spark.conf.set(SHUFFLE_PARTITIONS, str(max(2, slots)))
    except Exception:  # noqa: BLE001 - a managed runtime may keep its own setting
        return


def log_cluster(spark) -> int:
    """One line on what Spark runs on; on a cluster, one on the executors' Python.

    Returns
    -------
    int
        The task slots (:func:`default_parallelism`).
    """
    from walsspark.session import is_connect

    master = conf_value(spark, "spark.master") or "unknown master"
    kind = "Spark Connect" if is_connect(spark) else "classic Spark"
    version = getattr(spark, "version", "?")
    pythons = None
    if master.startswith(("spark://", "yarn", "k8s://", "mesos://")):
        # First, so that executors are running (and counted) when the task slots are read:
        # a standalone master starts its executors after the application registers.
        pythons = executor_pythons(spark, max(2, default_parallelism(spark, refresh=True)))
    slots = default_parallelism(spark, refresh=True)
    # (Asking a local master for its executors only earns a warning from Spark.)
    count = None if master.startswith("local") else executor_count(spark)
    hosts = sorted({python.host for python in pythons or []})
    if master.startswith("local"):
        executors = "the driver runs the tasks"
    elif count is None:
        where = " through Spark Connect" if is_connect(spark) else ""
        executors = f"executors not visible{where}"
    else:
        executors = f"{count} executors" + (f" on {', '.join(hosts)}" if hosts else "")
    log.info("Spark %s (%s), master %s: %s; %d task slots", version, kind, master, executors, slots)
    if pythons is not None:
        shown = sorted({f"{p.executable} (Python {p.version})" for p in pythons})
        log.info("executors run %s", ", ".join(shown))
    return slots
