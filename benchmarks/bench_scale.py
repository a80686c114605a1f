"""Scale: walsspark (exact and CG) against Spark MLlib ALS and `implicit`, 1M to 13.3M ratings.

For each size in ``--sizes`` a MovieLens-20M-shaped synthetic set (power-law users and
items, a planted low-rank taste: :func:`walsspark.synthetic.ml20m_like_size`; 138k users x
27k items at 13.3M ratings, about 96 ratings per user, fewer items at smaller sizes) is
generated on the executors (:func:`walsspark.synthetic.synthetic_ratings_frame`, one task per
part of ``--ratings-per-part`` ratings: the driver never holds the data), cached and counted,
untimed. Then, one run each, in one Spark session (``local[2]`` by default), implicit
feedback with the ``mllib-implicit`` objective (W = 1 + alpha r on observed entries, 1
elsewhere, lambda n_i), rank 64, ``--sweeps`` sweeps. Before the first size, each Spark
system runs one untimed sweep on 50k ratings (``--no-warmup`` skips it), so JIT compilation
and the Python workers' start-up do not land on whichever system runs first.

- walsspark, exact solver and CG solver (``cg_steps`` 3), as ``walsspark train`` runs them:
  :func:`walsspark.weighting.entry_weights` (cached when the entries carry confidences), then
  :func:`walsspark.train.fit`, then :func:`walsspark.model.save_model` with the factor blocks
  to a temporary directory. Layout seconds are what ``fit`` logs ("laid out ... (X s)"),
  seconds per sweep the median of ``history[i].seconds``, and the total is fit + save;
- Spark MLlib ALS (``implicitPrefs=True``, same rank, ``maxIter`` = sweeps, regParam, alpha,
  and the user and item block counts walsspark chose): fit plus counting both factor
  tables, then ``model.save``. Its per-sweep time is fit / maxIter (its layout is inside);
- `implicit` (benfred/implicit, ``implicit.cpu.als.AlternatingLeastSquares``, CG with 3 steps,
  ``num_threads`` 2, one BLAS thread), when importable by ``--implicit-python``: the ratings
  are collected on the driver as Arrow (this single-process peer may hold a copy), written to
  a temporary ``.npz``, and a separate process builds the scipy CSR (its layout), fits and
  saves. It is handed confidences 1 + alpha r with its own ``alpha`` 1, since it weighs an
  observed entry by the value it is given where MLlib adds 1; its lambda is not scaled by
  n_i (it has no such option), which changes the objective, not the cost of a sweep.
  Per-sweep time is fit / iterations.

Peak memory per system and size (resident set, MB): the driver's Python process, the Spark
JVM, and the Python workers (the JVM's descendants: ``pyspark.daemon`` and its forked
workers; only those that used at least 0.1 s of CPU during the run, so idle workers left
from an earlier system do not count), sampled from ``/proc/<pid>/status`` every 0.2 s,
with each process's high-water mark (``VmHWM``, reset by ``clear_refs`` at the start of
the run) catching peaks between samples. "worker MB" is the largest single worker,
"workers sum MB" the largest sum over workers at one sample (it counts pages they share
with the daemon more than once); MLlib runs none. For `implicit`, "worker MB" is its own
process's peak (``VmHWM``) and "driver MB" covers collecting the ratings. The JVM figure is
the heap Spark has grown to, which a later system inherits in part.

A ForeignCpuMonitor (from ``bench_train``) records the CPU time other processes used during
each run; runs that took noticeable CPU from elsewhere are listed as possibly contaminated.

Examples::

    python benchmarks/bench_scale.py                                 # 1M, 4M, 13.3M ratings
    python benchmarks/bench_scale.py --sizes 200000,500000 --sweeps 2  # a quick trial
    python benchmarks/bench_scale.py --json out/scale.json --plot out/scale.png
    python benchmarks/bench_scale.py --systems walsspark-exact,mllib --sizes 4000000
    python benchmarks/bench_scale.py --implicit-python /opt/implicit-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

DEFAULT_SIZES = (1_000_000, 4_000_000, 13_300_000)
SYSTEMS = ("walsspark-exact", "walsspark-cg", "mllib", "implicit")
# MLlib ALS's defaults for regParam and alpha; the same values go to every system.
DEFAULT_REG = 0.1
DEFAULT_ALPHA = 1.0
# Parts of the synthetic data: about 100 MB of Python memory per generating task.
DEFAULT_RATINGS_PER_PART = 500_000
# Variables that pin the BLAS libraries numpy and implicit load to one thread: read when
# the library loads, so they are set in the environment of the process before it starts.
BLAS_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
SAMPLE_INTERVAL_S = 0.2
# A worker counts as active in a run when it used at least this much CPU meanwhile.
MIN_ACTIVE_CPU_S = 0.1
# Ratings of the untimed warm-up set (one sweep of each Spark system before the first size).
WARMUP_RATINGS = 50_000
MB = 1024.0 * 1024.0


def parse_sizes(text: str) -> list[int]:
    """``"1000000,4e6"`` -> ``[1000000, 4000000]`` (numbers of ratings)."""
    sizes = []
    for token in text.split(","):
        token = token.strip().replace("_", "")
        if token:
            value = float(token)
            if not math.isfinite(value) or value < 1000:
                raise argparse.ArgumentTypeError(f"sizes must be >= 1000 ratings, got {token}")
            sizes.append(int(value))
    if not sizes:
        raise argparse.ArgumentTypeError("no size given")
    return sizes


def parse_systems(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SYSTEMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"systems must be among {', '.join(SYSTEMS)}, got {text!r}"
        )
    return [name for name in SYSTEMS if name in names]  # always the documented order


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time walsspark (exact, CG), Spark MLlib ALS and implicit on MovieLens-20M-shaped "
            "synthetic implicit feedback at several sizes: layout, seconds per sweep, total "
            "to a saved model, peak memory of the driver, the JVM and the Python workers."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="comma-separated numbers of ratings (default 1000000,4000000,13300000)",
    )
    parser.add_argument(
        "--systems",
        type=parse_systems,
        default=list(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)}",
    )
    parser.add_argument("--rank", type=int, default=64, help="number of latent factors")
    parser.add_argument("--sweeps", type=int, default=3, help="sweeps (MLlib maxIter)")
    parser.add_argument("--reg", type=float, default=DEFAULT_REG, help="lambda (regParam)")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="confidence scale")
    parser.add_argument("--cg-steps", type=int, default=3, help="CG steps per half-sweep")
    parser.add_argument("--seed", type=int, default=42, help="data and initialization seed")
    parser.add_argument(
        "--data-rank", type=int, default=8, help="rank of the planted taste of the data"
    )
    parser.add_argument(
        "--ratings-per-part",
        type=int,
        default=DEFAULT_RATINGS_PER_PART,
        help="ratings generated per Spark task",
    )
    parser.add_argument("--master", default="local[2]", help="Spark master")
    parser.add_argument(
        "--driver-memory",
        default="8g",
        help="spark.driver.memory of the session started here (local mode: all executors)",
    )
    parser.add_argument(
        "--implicit-python",
        default=sys.executable,
        help="Python that runs implicit (another venv's, if implicit cannot live in this one)",
    )
    parser.add_argument("--implicit-threads", type=int, default=2, help="implicit's num_threads")
    parser.add_argument(
        "--work-dir",
        default=None,
        help="where models and the implicit input go while a run lasts (default: a temp dir)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this file")
    parser.add_argument(
        "--plot", metavar="PATH.png", help="per-sweep seconds and worker memory vs ratings"
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the untimed one-sweep run of each Spark system on a small set first",
    )
    parser.add_argument("--verbose", action="store_true", help="log walsspark's progress to stderr")
    args = parser.parse_args(argv)
    for name in ("rank", "sweeps", "cg_steps", "data_rank", "ratings_per_part"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.reg < 0 or args.alpha <= 0:
        parser.error("--reg must be >= 0 and --alpha > 0")
    return args


# --------------------------------------------------------------------------------------
# Peak memory of the driver, the JVM and the Python workers (Linux /proc)
# --------------------------------------------------------------------------------------


def _stat(pid: int | str) -> tuple[int, int, int] | None:
    """(ppid, start time, utime + stime ticks) of a process, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    # fields[k] is stat field k + 3: ppid 4, utime 14, stime 15, starttime 22.
    return int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12])


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, start time, utime + stime ticks) of every readable process."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := _stat(name)) is not None:
            table[int(name)] = stat
    return table


def _descendants(table: dict[int, tuple[int, int, int]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _is_python(pid: int) -> bool:
    """Whether a process runs Python (a pyspark daemon or worker).

    The JVM also forks short-lived helpers (Hadoop's shell commands when files are written):
    until they exec, such a child still shows the JVM's command line and its resident set,
    so it must not count as a worker.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    return os.path.basename(argv[0]).startswith(b"python") or any(b"pyspark" in a for a in argv)


def _rss_hwm_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a process in kB, or None once it has gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        return None
    return rss, hwm


def _reset_hwm(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (``echo 5 > clear_refs``, Linux >= 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """Peak resident memory of the driver, the JVM and the JVM's Python workers during a run.

    A thread samples ``/proc`` every ``interval`` seconds: it reads ``VmRSS`` and ``VmHWM``
    of the driver, the JVM and the JVM's Python descendants (the ``pyspark.daemon`` and its
    workers) and keeps per process the larger of every RSS seen and its last high-water
    mark. The marks are reset when the run starts, so a peak of an earlier run does not
    count; a worker counts only if it used at least ``MIN_ACTIVE_CPU_S`` of CPU during the
    run (since its start, if it started during it), so idle workers that an earlier system
    left behind are not charged to this one.

    Finding the descendants takes a scan of every process (about 5 ms here), done every
    ``rescan`` samples only: workers live long (Spark reuses them), and a worker's
    high-water mark keeps its peak until it is next read.

    Parameters
    ----------
    jvm_pid : int or None
        The session's JVM (:func:`jvm_pid`); None measures the driver alone.
    interval : float
        Seconds between samples.

    Examples
    --------
    >>> memory = PeakMemory(jvm_pid(spark)).start()  # doctest: +SKIP
    >>> trained = fit(spark, entries, params)  # doctest: +SKIP
    >>> memory.stop()["worker_mb"]  # doctest: +SKIP
    """

    rescan = 5

    def __init__(self, jvm_pid: int | None, interval: float = SAMPLE_INTERVAL_S) -> None:
        self.driver_pid = os.getpid()
        self.jvm_pid = jvm_pid
        self.interval = interval
        self.available = os.path.isdir("/proc/self")
        self._peak_kb: dict[tuple[int, int], int] = {}  # (pid, start) -> peak kB
        self._cpu: dict[tuple[int, int], tuple[int, int]] = {}  # (pid, start) -> first, last
        self._worker_samples: list[dict[tuple[int, int], int]] = []
        self._new: set[tuple[int, int]] = set()
        self._known: set[tuple[int, int]] = set()
        self._workers: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.hwm_reset = False
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def start(self) -> PeakMemory:
        if not self.available:
            return self
        table = _proc_table()
        pids = [self.driver_pid]
        if self.jvm_pid is not None:
            pids += [self.jvm_pid, *_descendants(table, self.jvm_pid)]
        self.hwm_reset = all([_reset_hwm(pid) for pid in pids])
        self._known = {(pid, table[pid][1]) for pid in pids if pid in table}
        self._sample(table)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        """Stop sampling and return the peaks.

        Returns
        -------
        dict
            ``driver_mb``, ``jvm_mb``, ``worker_mb`` (largest active worker),
            ``workers_sum_mb`` (largest sum over active workers at one sample), NaN where
            not measurable (no ``/proc``, no JVM, no active worker); ``active_workers``;
            ``hwm_reset`` (whether every high-water mark could be reset at the start).
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._sample(_proc_table())
        if not self.available:
            return {"driver_mb": math.nan, "jvm_mb": math.nan, "worker_mb": math.nan}
        driver = [v for (pid, _), v in self._peak_kb.items() if pid == self.driver_pid]
        jvm = [v for (pid, _), v in self._peak_kb.items() if pid == self.jvm_pid]
        # A new worker counts from its start; an idle one may still take a tick (the daemon
        # reaping a worker Spark let go), so activity means at least MIN_ACTIVE_CPU_S.
        least = MIN_ACTIVE_CPU_S * self._ticks
        active = {
            key
            for key, (first, last) in self._cpu.items()
            if last - (0 if key in self._new else first) >= least
        }
        workers = [v for key, v in self._peak_kb.items() if key in active]
        sums = [sum(v for k, v in s.items() if k in active) for s in self._worker_samples]
        return {
            "driver_mb": max(driver, default=0) / 1024.0,
            "jvm_mb": max(jvm, default=0) / 1024.0 if self.jvm_pid else math.nan,
            # NaN when no Python worker ran (MLlib): nothing to report, not 0 MB.
            "worker_mb": max(workers) / 1024.0 if workers else math.nan,
            "workers_sum_mb": max(sums) / 1024.0 if workers else math.nan,
            "active_workers": len(active),
            "hwm_reset": self.hwm_reset,
        }

    def _loop(self) -> None:
        count = 0
        while not self._stop.wait(self.interval):
            count += 1
            self._sample(_proc_table() if count % self.rescan == 0 else None)

    def _sample(self, table: dict[int, tuple[int, int, int]] | None) -> None:
        """One sample; ``table`` (all processes) to look for new workers, else the known."""
        with self._lock:
            if table is not None:
                found = _descendants(table, self.jvm_pid) if self.jvm_pid else set()
                self._workers = {pid for pid in found if _is_python(pid)}
            sample: dict[tuple[int, int], int] = {}
            for pid in (self.driver_pid, self.jvm_pid, *self._workers):
                stat = _stat(pid) if pid is not None else None
                memory = _rss_hwm_kb(pid) if stat is not None else None
                if memory is None:
                    continue
                key = (pid, stat[1])
                self._peak_kb[key] = max(self._peak_kb.get(key, 0), *memory)
                if pid in self._workers:
                    sample[key] = memory[0]
                    first = self._cpu.get(key, (stat[2], stat[2]))[0]
                    self._cpu[key] = (first, stat[2])
                    if key not in self._known:
                        self._known.add(key)
                        self._new.add(key)
            self._worker_samples.append(sample)


def jvm_pid(spark) -> int | None:
    """The pid of the session's JVM (the driver, and in local mode the executors too)."""
    jvm = getattr(spark, "_jvm", None) or getattr(spark.sparkContext, "_jvm", None)
    try:
        return int(jvm.java.lang.ProcessHandle.current().pid())
    except Exception:  # noqa: BLE001 - fall back to the driver's java child
        pass
    table = _proc_table()
    for pid in sorted(_descendants(table, os.getpid())):
        try:
            with open(f"/proc/{pid}/comm") as handle:
                if handle.read().strip() == "java":
                    return pid
        except OSError:
            continue
    return None


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def scale_session(args: argparse.Namespace):
    """The benchmark's Spark session: like ``bench_train.benchmark_session``, with the driver
    memory of ``--driver-memory`` (in local mode the executors live in the driver JVM) and
    room to collect the ratings for `implicit` (``spark.driver.maxResultSize``); returns it
    and its checkpoint directory (MLlib checkpoints there; removed at the end)."""
    from walsspark.session import get_or_create_session, worker_environment

    for name, value in worker_environment().items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("WALSSPARK_DRIVER_MEMORY", args.driver_memory)
    spark = get_or_create_session(
        master=args.master,
        app_name="walsspark-bench-scale",
        settings={"spark.driver.maxResultSize": "0"},
    )
    checkpoints = tempfile.mkdtemp(prefix="walsspark-bench-checkpoints-")
    spark.sparkContext.setCheckpointDir(checkpoints)
    spark.sparkContext.setLogLevel("ERROR")
    return spark, checkpoints


def generate_ratings(spark, num_ratings: int, args: argparse.Namespace) -> tuple:
    """Generate, cache and count a MovieLens-20M-shaped set on the executors (untimed).

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    num_ratings : int
        Target size; :func:`walsspark.synthetic.ml20m_like_size` gives the shape.
    args : argparse.Namespace
        ``data_rank``, ``seed`` and ``ratings_per_part`` (at least one part per task slot).

    Returns
    -------
    tuple
        The cached DataFrame (``user``, ``item`` long, ``rating`` double) and a dict of
        what it holds: ratings, users, items, the catalogue size, parts, seconds taken.
    """
    from pyspark.sql import functions as F

    from walsspark.cluster import default_parallelism
    from walsspark.synthetic_scale import ml20m_like_size, synthetic_ratings_frame

    shape = ml20m_like_size(num_ratings)
    num_parts = max(default_parallelism(spark), -(-num_ratings // args.ratings_per_part))
    start = time.perf_counter()
    frame = synthetic_ratings_frame(
        spark, num_parts=num_parts, rank=args.data_rank, seed=args.seed, **shape
    )
    ratings = frame.selectExpr(
        "user_id as user", "item_id as item", "cast(rating as double) as rating"
    ).cache()
    count = ratings.count()
    sizes = ratings.agg(
        F.countDistinct("user").alias("users"), F.countDistinct("item").alias("items")
    ).collect()[0]
    info = {
        "requested": num_ratings,
        "ratings": count,
        "users": int(sizes["users"]),
        "items": int(sizes["items"]),
        "catalogue": shape["num_items"],
        "mean_ratings_per_user": shape["mean_ratings_per_user"],
        "num_parts": num_parts,
        "generate_seconds": time.perf_counter() - start,
    }
    return ratings, info


# --------------------------------------------------------------------------------------
# One run of each system
# --------------------------------------------------------------------------------------


class LayoutLog(logging.Handler):
    """Keeps the seconds of walsspark's "laid out ... (X s)" log line."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.seconds: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if not str(record.msg).startswith("laid out"):
            return
        args = record.args if isinstance(record.args, tuple) else ()
        if args and isinstance(args[-1], int | float):
            self.seconds = float(args[-1])  # unrounded, where the message shows 0.1 s
            return
        found = re.search(r"\(([\d.]+) s\)", record.getMessage())
        if found:
            self.seconds = float(found.group(1))


def wals_params(args: argparse.Namespace, solver: str):
    from walsspark.params import PRESETS, WALSParams

    return WALSParams(
        **PRESETS["mllib-implicit"],
        rank=args.rank,
        sweeps=args.sweeps,
        regularization=args.reg,
        alpha=args.alpha,
        solver=solver,
        cg_steps=args.cg_steps,
        seed=args.seed,
        holdout_fraction=0.0,
    ).validate()


def run_walsspark(spark, ratings, args, solver: str, work_dir: str, probes) -> dict:
    """Fit and save as ``walsspark train`` does; timed: fit, then save (with factor blocks).

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    ratings : pyspark.sql.DataFrame
        ``user``, ``item``, ``rating``, cached.
    args : argparse.Namespace
        rank, sweeps, reg, alpha, cg_steps, seed.
    solver : str
        ``"exact"`` or ``"cg"``.
    work_dir : str
        Where the model is written (and deleted afterwards).
    probes : callable
        Returns a started :class:`PeakMemory` and a function giving the foreign CPU seconds
        since the call.

    Returns
    -------
    dict
        ``layout_seconds``, ``per_sweep_seconds`` (median), ``sweep_seconds``,
        ``fit_seconds``, ``save_seconds``, ``total_seconds``, the block counts, the loss per
        sweep, ``foreign_cpu_seconds`` and the memory peaks of :meth:`PeakMemory.stop`.
    """
    from walsspark.model import save_model
    from walsspark.train import fit
    from walsspark.weighting import entry_weights

    params = wals_params(args, solver)
    handler = LayoutLog()
    logger = logging.getLogger("walsspark")
    logger.addHandler(handler)
    path = os.path.join(work_dir, f"walsspark-{solver}-model")
    # As commands/train.py: targets and confidences, cached when the entries carry them.
    entries = entry_weights(ratings, params)
    if params.per_entry_weights:
        entries = entries.cache()
    memory, foreign = probes()
    try:
        start = time.perf_counter()
        trained = fit(spark, entries, params)
        fit_seconds = time.perf_counter() - start
        save_start = time.perf_counter()
        factor_blocks = {
            "users": trained.factor_blocks("user").cache(),
            "items": trained.factor_blocks("item").cache(),
        }
        history = [
            {"sweep": r.sweep, "loss": r.loss, "seconds": round(r.seconds, 3)}
            for r in trained.history
        ]
        metadata = {
            "params": params.to_dict(),
            "data": {
                "input": "bench_scale synthetic",
                "num_train_ratings": trained.num_ratings,
                "num_users": trained.users.num_ids(),
                "num_items": trained.items.num_ids(),
                "num_user_blocks": trained.users.num_blocks,
                "num_item_blocks": trained.items.num_blocks,
            },
            "history": history,
            "sweeps_run": len(history),
            "fit_seconds": round(trained.fit_seconds, 3),
            "evaluation": None,
        }
        save_model(
            path,
            trained.user_factors(),
            trained.item_factors(),
            metadata,
            False,
            factor_blocks=factor_blocks,
        )
        save_seconds = time.perf_counter() - save_start
        total = time.perf_counter() - start
    finally:
        logger.removeHandler(handler)
        peaks, foreign_seconds = memory.stop(), foreign()
    sweep_seconds = [r.seconds for r in trained.history]
    outcome = {
        "layout_seconds": handler.seconds,
        "fit_minus_sweeps_seconds": fit_seconds - sum(sweep_seconds),
        "sweep_seconds": sweep_seconds,
        "per_sweep_seconds": statistics.median(sweep_seconds),
        "fit_seconds": fit_seconds,
        "save_seconds": save_seconds,
        "total_seconds": total,
        "num_user_blocks": trained.users.num_blocks,
        "num_item_blocks": trained.items.num_blocks,
        "loss": [r.loss for r in trained.history],
        "foreign_cpu_seconds": foreign_seconds,
        **peaks,
    }
    if outcome["layout_seconds"] is None:  # the log line changed: fit minus the sweeps
        outcome["layout_seconds"] = outcome["fit_minus_sweeps_seconds"]
    for frame in factor_blocks.values():
        frame.unpersist()
    trained.release()
    entries.unpersist()
    shutil.rmtree(path, ignore_errors=True)
    return outcome


def run_mllib(ratings, args, blocks: tuple[int, int], work_dir: str, probes) -> dict:
    """Fit MLlib ALS (timed: fit plus counting both factor tables), then save (timed).

    Parameters
    ----------
    ratings : pyspark.sql.DataFrame
        ``user``, ``item``, ``rating``, cached.
    args : argparse.Namespace
        rank, sweeps (maxIter), reg (regParam), alpha, seed.
    blocks : tuple of int
        numUserBlocks, numItemBlocks.
    work_dir : str
        Where the model is written (and deleted afterwards).
    probes : callable
        As in :func:`run_walsspark`.

    Returns
    -------
    dict
        As :func:`run_walsspark`'s, with ``per_sweep_seconds`` = fit / maxIter and no
        layout (MLlib's is inside its fit).
    """
    from pyspark.ml.recommendation import ALS

    als = ALS(
        rank=args.rank,
        maxIter=args.sweeps,
        regParam=args.reg,
        alpha=args.alpha,
        implicitPrefs=True,
        numUserBlocks=blocks[0],
        numItemBlocks=blocks[1],
        nonnegative=False,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        seed=args.seed,
    )
    path = os.path.join(work_dir, "mllib-model")
    memory, foreign = probes()
    try:
        start = time.perf_counter()
        model = als.fit(ratings)
        model.userFactors.count()
        model.itemFactors.count()
        fit_seconds = time.perf_counter() - start
        save_start = time.perf_counter()
        model.save(path)
        save_seconds = time.perf_counter() - save_start
        total = time.perf_counter() - start
    finally:
        peaks, foreign_seconds = memory.stop(), foreign()
    del model
    shutil.rmtree(path, ignore_errors=True)
    return {
        "layout_seconds": None,  # inside MLlib's fit, not reported separately
        "per_sweep_seconds": fit_seconds / args.sweeps,
        "fit_seconds": fit_seconds,
        "save_seconds": save_seconds,
        "total_seconds": total,
        "num_user_blocks": blocks[0],
        "num_item_blocks": blocks[1],
        "foreign_cpu_seconds": foreign_seconds,
        **peaks,
    }


def implicit_available(python: str) -> tuple[bool, str]:
    """Whether ``python`` can import implicit's CPU ALS; its versions or the error."""
    code = (
        "import implicit, numpy, scipy; from implicit.cpu.als import AlternatingLeastSquares; "
        "print(implicit.__version__, numpy.__version__, scipy.__version__)"
    )
    try:
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=120, env=_blas_env()
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, str(error)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return False, lines[-1] if lines else f"exit status {done.returncode}"
    implicit_version, numpy_version, scipy_version = done.stdout.split()
    return True, f"implicit {implicit_version}, numpy {numpy_version}, scipy {scipy_version}"


def _blas_env() -> dict[str, str]:
    return {**os.environ, **dict.fromkeys(BLAS_THREAD_VARIABLES, "1")}


def run_implicit(ratings, args, work_dir: str, probes) -> dict:
    """Collect the ratings (untimed), then CSR, fit and save in a process of their own.

    The memory figures cover the collect too: the driver's copy is this peer's cost.

    Parameters
    ----------
    ratings : pyspark.sql.DataFrame
        ``user``, ``item``, ``rating``, cached.
    args : argparse.Namespace
        rank, sweeps, reg, alpha, cg_steps, seed, implicit_python, implicit_threads.
    work_dir : str
        Where the input ``.npz`` and the model go (deleted afterwards).
    probes : callable
        As in :func:`run_walsspark`.

    Returns
    -------
    dict
        ``layout_seconds`` (the CSR build), ``per_sweep_seconds`` (fit / iterations),
        ``iteration_seconds`` (implicit's own per-iteration times), ``fit_seconds``,
        ``save_seconds``, ``total_seconds`` (CSR + fit + save), ``collect_seconds``, the
        memory peaks (``worker_mb``: implicit's process) and the versions it ran with.

    Raises
    ------
    RuntimeError
        With implicit's stderr, when its process fails.
    """
    import numpy as np

    memory, foreign = probes()
    start = time.perf_counter()
    table = ratings.toArrow()
    data_path = os.path.join(work_dir, "implicit-input.npz")
    np.savez(
        data_path,
        user=table.column("user").to_numpy(),
        item=table.column("item").to_numpy(),
        rating=table.column("rating").to_numpy(),
    )
    del table
    collect_seconds = time.perf_counter() - start
    spec = {
        "data": data_path,
        "model": os.path.join(work_dir, "implicit-model.npz"),
        "result": os.path.join(work_dir, "implicit-result.json"),
        "rank": args.rank,
        "sweeps": args.sweeps,
        "reg": args.reg,
        "alpha": args.alpha,
        "cg_steps": args.cg_steps,
        "threads": args.implicit_threads,
        "seed": args.seed,
    }
    spec_path = os.path.join(work_dir, "implicit-spec.json")
    Path(spec_path).write_text(json.dumps(spec))
    try:
        done = subprocess.run(
            [args.implicit_python, str(Path(__file__).resolve()), "--implicit-worker", spec_path],
            env=_blas_env(),
            capture_output=True,
            text=True,
        )
    finally:
        peaks, foreign_seconds = memory.stop(), foreign()
    if done.returncode != 0:
        raise RuntimeError(f"implicit run failed:\n{done.stderr.strip()}")
    result = json.loads(Path(spec["result"]).read_text())
    for name in ("data", "model", "result"):  # the input alone is 20 bytes a rating
        if os.path.exists(spec[name]):
            os.remove(spec[name])
    return {
        "layout_seconds": result["csr_seconds"],
        "per_sweep_seconds": result["fit_seconds"] / args.sweeps,
        "iteration_seconds": result["iteration_seconds"],
        "fit_seconds": result["fit_seconds"],
        "save_seconds": result["save_seconds"],
        "total_seconds": result["csr_seconds"] + result["fit_seconds"] + result["save_seconds"],
        "collect_seconds": collect_seconds,
        "foreign_cpu_seconds": foreign_seconds,
        "driver_mb": peaks["driver_mb"],
        "jvm_mb": peaks["jvm_mb"],
        # implicit's own process takes the place of the workers.
        "worker_mb": result["peak_rss_mb"],
        "workers_sum_mb": result["peak_rss_mb"],
        "hwm_reset": peaks.get("hwm_reset"),
        "versions": result["versions"],
        "blas_threads": result["blas_threads"],
    }


def _own_peak_mb(resource) -> float:
    """This process's peak resident set (MB): CSR, factors and all.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries the parent's high-water mark into
    ``ru_maxrss`` across fork and exec, so a child started by a larger driver would report
    the driver's peak.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def implicit_worker(spec_path: str) -> int:
    """``--implicit-worker SPEC``: CSR, fit and save with implicit; write the figures.

    Runs under ``--implicit-python`` (possibly another venv: only numpy, scipy and implicit
    are needed), started with one BLAS thread in its environment before numpy loads;
    threadpoolctl, when present, also pins BLAS to one thread and reports what it found.

    Parameters
    ----------
    spec_path : str
        JSON written by :func:`run_implicit`: the input ``.npz`` (user, item, rating), the
        model and result paths, rank, sweeps, reg, alpha, cg_steps, threads and seed.

    Returns
    -------
    int
        0; the figures go to the spec's result path as JSON.
    """
    import resource

    import numpy as np
    import scipy
    import scipy.sparse

    spec = json.loads(Path(spec_path).read_text())
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        limiter, blas_threads = None, "threadpoolctl missing; BLAS env vars = 1"
    else:
        limiter = threadpool_limits(1, "blas")
        blas_threads = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
    import implicit
    from implicit.cpu.als import AlternatingLeastSquares

    loaded = np.load(spec["data"])
    users, items, ratings = loaded["user"], loaded["item"], loaded["rating"]
    start = time.perf_counter()
    user_ids, user_index = np.unique(users, return_inverse=True)
    item_ids, item_index = np.unique(items, return_inverse=True)
    # implicit weighs an observed entry by the value it gets (times its alpha) where MLlib
    # uses 1 + alpha r: hand it 1 + alpha r with its own alpha left at 1.
    confidence = (1.0 + spec["alpha"] * ratings).astype(np.float32)
    matrix = scipy.sparse.csr_matrix(
        (confidence, (user_index, item_index)), shape=(user_ids.size, item_ids.size)
    )
    csr_seconds = time.perf_counter() - start
    del users, items, ratings, user_index, item_index, confidence, loaded

    model = AlternatingLeastSquares(
        factors=spec["rank"],
        regularization=spec["reg"],
        alpha=1.0,
        use_cg=True,
        iterations=spec["sweeps"],
        num_threads=spec["threads"],
        random_state=spec["seed"],
    )
    model.cg_steps = spec["cg_steps"]  # an attribute, not a constructor argument, in 0.7
    iteration_seconds: list[float] = []
    start = time.perf_counter()
    model.fit(
        matrix,
        show_progress=False,
        callback=lambda _iteration, seconds, _loss: iteration_seconds.append(seconds),
    )
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model.save(spec["model"])
    save_seconds = time.perf_counter() - start
    if limiter is not None:
        limiter.restore_original_limits()
    result = {
        "csr_seconds": csr_seconds,
        "fit_seconds": fit_seconds,
        "save_seconds": save_seconds,
        "iteration_seconds": iteration_seconds,
        "peak_rss_mb": _own_peak_mb(resource),
        "shape": list(matrix.shape),
        "nnz": int(matrix.nnz),
        "versions": {
            "implicit": implicit.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "python": platform.python_version(),
        },
        "blas_threads": blas_threads,
    }
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------

LABELS = {
    "walsspark-exact": "walsspark exact",
    "walsspark-cg": "walsspark cg",
    "mllib": "Spark MLlib ALS",
    "implicit": "implicit (CPU, CG)",
}


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _fmt(value, spec: str, width: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>{width}}"
    return f"{value:>{width}{spec}}"


def ratios(result: dict) -> list[dict]:
    """Per size and system: per-sweep and total seconds over MLlib's and implicit's."""
    rows = []
    for size in result["sizes"]:
        runs = size["systems"]
        for system, run in runs.items():
            if "skipped" in run:
                continue
            row = {"ratings": size["data"]["ratings"], "system": system}
            for reference in ("mllib", "implicit"):
                ref = runs.get(reference)
                for key in ("per_sweep_seconds", "total_seconds"):
                    ok = ref and ref.get(key) and run.get(key) is not None
                    row[f"{key}_over_{reference}"] = run[key] / ref[key] if ok else None
            rows.append(row)
    return rows


def format_report(result: dict) -> str:
    """The printed report: the table, the ratios, the data and contention warnings."""
    cfg, env = result["config"], result["environment"]
    lines = [
        "Scale: walsspark vs Spark MLlib ALS vs implicit, implicit feedback (mllib-implicit "
        "objective), one run each",
        f"params   rank={cfg['rank']} sweeps={cfg['sweeps']} lambda={cfg['reg']} "
        f"alpha={cfg['alpha']} cg_steps={cfg['cg_steps']} seed={cfg['seed']} "
        f"master={cfg['master']} driver memory={cfg['driver_memory']}",
        f"env      {env['cpu_count']} CPUs, pyspark {env['pyspark']}, Python {env['python']}, "
        f"MLlib BLAS/LAPACK: {env['mllib_blas']}; implicit: {env['implicit']}",
        "",
    ]
    head = (
        f"{'ratings':>11} {'system':<19}{'layout s':>9}{'sweep s':>9}{'total s':>9}"
        f"{'driver MB':>10}{'JVM MB':>8}{'worker MB':>10}{'wkr sum MB':>11}"
    )
    lines += [head, "-" * len(head)]
    for size in result["sizes"]:
        for system, run in size["systems"].items():
            if "skipped" in run:
                lines.append(
                    f"{size['data']['ratings']:>11,} {LABELS[system]:<19}  skipped: "
                    f"{run['skipped']}"
                )
                continue
            lines.append(
                f"{size['data']['ratings']:>11,} {LABELS[system]:<19}"
                + _fmt(run.get("layout_seconds"), ".2f", 9)
                + _fmt(run["per_sweep_seconds"], ".2f", 9)
                + _fmt(run["total_seconds"], ".2f", 9)
                + _fmt(run.get("driver_mb"), ".0f", 10)
                + _fmt(run.get("jvm_mb"), ".0f", 8)
                + _fmt(run.get("worker_mb"), ".0f", 10)
                + _fmt(run.get("workers_sum_mb"), ".0f", 11)
            )
    lines += [
        "layout: walsspark's logged layout; implicit's CSR build; MLlib's is inside its fit.",
        "sweep: walsspark the median sweep; MLlib and implicit fit / iterations.",
        "total: fit + save of the model (implicit: CSR + fit + save, after an untimed collect).",
        "worker MB: largest Python worker (for implicit: its own process); wkr sum: all workers "
        "at one sample.",
        "",
        f"{'ratios':>11} {'system':<19}{'sweep/MLlib':>12}{'total/MLlib':>12}"
        f"{'sweep/impl':>12}{'total/impl':>12}",
    ]
    for row in result["ratios"]:
        lines.append(
            f"{row['ratings']:>11,} {LABELS[row['system']]:<19}"
            + _fmt(row["per_sweep_seconds_over_mllib"], ".2f", 12)
            + _fmt(row["total_seconds_over_mllib"], ".2f", 12)
            + _fmt(row["per_sweep_seconds_over_implicit"], ".2f", 12)
            + _fmt(row["total_seconds_over_implicit"], ".2f", 12)
        )
    lines += ["", "data (generated on the executors, untimed):"]
    for size in result["sizes"]:
        data = size["data"]
        lines.append(
            f"  {data['ratings']:>11,} ratings ({data['requested']:,} requested): "
            f"{data['users']:,} users, {data['items']:,} of {data['catalogue']:,} items, "
            f"{data['num_parts']} parts, {data['generate_seconds']:.1f} s to generate+cache"
        )
    contended = [
        f"{LABELS[system]} at {size['data']['ratings']:,} ({run['foreign_cpu_seconds']:.1f} CPU s)"
        for size in result["sizes"]
        for system, run in size["systems"].items()
        if run.get("foreign_cpu_seconds", 0.0) > max(1.0, 0.05 * run.get("total_seconds", 0.0))
    ]
    if contended:
        lines += [
            "",
            "WARNING: other processes used CPU during timed runs: " + ", ".join(contended),
            "  timings may be contaminated; rerun on a quiet machine.",
        ]
    return "\n".join(lines)


def _json_ready(value):
    """``value`` with NaN and infinities as None: strict JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


def write_plot(result: dict, path: str) -> str:
    """Two panels against ratings (log x): seconds per sweep, peak Python worker memory.

    Parameters
    ----------
    result : dict
        What ``--json`` writes.
    path : str
        The PNG to write.

    Returns
    -------
    str
        What happened: the path written, or why the plot was skipped (no matplotlib).
    """
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not importable: plot skipped (pip install -e '.[bench]')"
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, system in enumerate(SYSTEMS):
        if system not in result["config"]["systems"]:
            continue
        # One colour per system in both panels, whichever systems ran.
        style = {"color": f"C{index}", "marker": "o", "label": LABELS[system]}
        points = [
            (size["data"]["ratings"], size["systems"][system])
            for size in result["sizes"]
            if system in size["systems"] and "skipped" not in size["systems"][system]
        ]
        if not points:
            continue
        x = [n for n, _ in points]
        left.plot(x, [r["per_sweep_seconds"] for _, r in points], **style)
        memory = [(n, r["worker_mb"]) for n, r in points if _finite(r.get("worker_mb"))]
        if memory:  # MLlib runs no Python worker
            right.plot(*zip(*memory, strict=True), **style)
    cfg = result["config"]
    left.set_title(f"seconds per sweep (rank {cfg['rank']}, {cfg['master']})")
    left.set_ylabel("seconds (log)")
    # Log seconds: the single-process peer and the Spark systems differ by decades.
    left.set_yscale("log")
    right.set_title("peak Python worker memory (implicit: its process)")
    right.set_ylabel("MB (RSS)")
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xlabel("ratings")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"wrote {path}"


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def warm_up(spark, args: argparse.Namespace, work_root: str, probes) -> float:
    """One untimed sweep of each Spark system on a small set; returns its seconds.

    The first runs of a session pay once for what later runs do not: JIT compilation of
    Spark's and MLlib's code paths, starting the Python workers and their imports (the
    first walsspark fit took 3x the time of the second at 200k ratings here). Without a
    warm-up that cost lands on whichever system runs first at the smallest size.
    """
    from walsspark.train import default_num_blocks

    start = time.perf_counter()
    one_sweep = argparse.Namespace(**{**vars(args), "sweeps": 1})
    ratings, data = generate_ratings(spark, WARMUP_RATINGS, one_sweep)
    work_dir = tempfile.mkdtemp(prefix="walsspark-bench-scale-warmup-", dir=work_root)
    for system in args.systems:
        if system.startswith("walsspark"):
            run_walsspark(spark, ratings, one_sweep, system.split("-")[1], work_dir, probes)
        elif system == "mllib":
            blocks = (default_num_blocks(spark, data["ratings"]),) * 2
            run_mllib(ratings, one_sweep, blocks, work_dir, probes)
    shutil.rmtree(work_dir, ignore_errors=True)
    ratings.unpersist()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # walsspark logs at INFO (the layout line is read from it); stderr shows it only with
    # --verbose.
    logging.getLogger("walsspark").setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.INFO if args.verbose else logging.WARNING)

    if str(BENCH_DIR) not in sys.path:  # bench_train sits next to this file
        sys.path.insert(0, str(BENCH_DIR))
    from bench_train import ForeignCpuMonitor, mllib_blas, release

    from walsspark.train import default_num_blocks

    implicit_ok, implicit_note = (False, "not requested")
    if "implicit" in args.systems:
        implicit_ok, implicit_note = implicit_available(args.implicit_python)
        if not implicit_ok:
            print(
                f"implicit skipped: {args.implicit_python} cannot import it ({implicit_note}); "
                "pip install -e '.[bench]' or pass --implicit-python",
                file=sys.stderr,
            )

    spark, checkpoints = scale_session(args)
    jvm = jvm_pid(spark)
    monitor = ForeignCpuMonitor().start()

    def probes():
        memory = PeakMemory(jvm).start()
        before = monitor.seconds()
        return memory, lambda: monitor.seconds() - before

    work_root = args.work_dir or tempfile.gettempdir()
    os.makedirs(work_root, exist_ok=True)
    warmup_seconds = None
    if not args.no_warmup:
        warmup_seconds = warm_up(spark, args, work_root, probes)
        print(f"warm-up (untimed): {warmup_seconds:.1f} s", file=sys.stderr, flush=True)
    sizes = []
    for num_ratings in args.sizes:
        ratings, data = generate_ratings(spark, num_ratings, args)
        print(
            f"{data['ratings']:,} ratings: {data['users']:,} users x {data['items']:,} items "
            f"({data['generate_seconds']:.1f} s to generate and cache, untimed)",
            file=sys.stderr,
            flush=True,
        )
        work_dir = tempfile.mkdtemp(prefix="walsspark-bench-scale-", dir=work_root)
        runs: dict[str, dict] = {}
        blocks = None
        for system in args.systems:
            release(spark)
            if system.startswith("walsspark"):
                solver = system.split("-")[1]
                runs[system] = run_walsspark(spark, ratings, args, solver, work_dir, probes)
                blocks = (runs[system]["num_user_blocks"], runs[system]["num_item_blocks"])
            elif system == "mllib":
                if blocks is None:  # walsspark not run: the counts it would choose
                    blocks = (default_num_blocks(spark, data["ratings"]),) * 2
                runs[system] = run_mllib(ratings, args, blocks, work_dir, probes)
            elif implicit_ok:
                runs[system] = run_implicit(ratings, args, work_dir, probes)
            else:
                runs[system] = {"skipped": implicit_note}
            run = runs[system]
            if "skipped" not in run:
                print(
                    f"  {LABELS[system]:<19} total {run['total_seconds']:7.2f} s, sweep "
                    f"{run['per_sweep_seconds']:6.2f} s, worker {run['worker_mb']:6.0f} MB"
                    + (
                        f"; other processes used {run['foreign_cpu_seconds']:.1f} CPU s"
                        if run.get("foreign_cpu_seconds", 0) > 1.0
                        else ""
                    ),
                    file=sys.stderr,
                    flush=True,
                )
        shutil.rmtree(work_dir, ignore_errors=True)
        ratings.unpersist()
        sizes.append({"data": data, "systems": runs})
    monitor.stop()

    result = {
        "config": {
            "sizes": args.sizes,
            "systems": args.systems,
            "rank": args.rank,
            "sweeps": args.sweeps,
            "reg": args.reg,
            "alpha": args.alpha,
            "cg_steps": args.cg_steps,
            "seed": args.seed,
            "data_rank": args.data_rank,
            "ratings_per_part": args.ratings_per_part,
            "warmup_ratings": None if args.no_warmup else WARMUP_RATINGS,
            "warmup_seconds": warmup_seconds,
            "master": args.master,
            "driver_memory": args.driver_memory,
            "implicit_python": args.implicit_python,
            "implicit_threads": args.implicit_threads,
            "walsspark_params": {
                solver: wals_params(args, solver).to_dict() for solver in ("exact", "cg")
            },
        },
        "environment": {
            "python": platform.python_version(),
            "pyspark": spark.version,
            "cpu_count": os.cpu_count(),
            "mllib_blas": mllib_blas(spark),
            "implicit": implicit_note,
            "platform": platform.platform(),
        },
        "sizes": sizes,
    }
    result["ratios"] = ratios(result)
    print(format_report(result))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_json_ready(result), indent=2, default=str) + "\n")
        print(f"\nwrote {out}")
    if args.plot:
        print(write_plot(result, args.plot))
    spark.stop()
    shutil.rmtree(checkpoints, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--implicit-worker":
        # The implicit process: stdlib, numpy, scipy and implicit only (no Spark, no repo).
        sys.exit(implicit_worker(sys.argv[2]))
    if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere, without installing
        sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
