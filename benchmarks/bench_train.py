"""Fit time and holdout accuracy: walsspark against Spark MLlib ALS (explicit), one run.

Both methods train on the same cached training split, with the same rank, number of sweeps
(MLlib's ``maxIter``), lambda and user/item block counts, in one Spark session (``local[2]``
by default). walsspark runs with ``unobserved_weight=0`` and ``reg_exponent=1``, which is
MLlib's explicit objective (ALS-WR: lambda scaled by each row's rating count), so the two
should reach about the same holdout RMSE. Both are scored by the same code
(:func:`walsspark.evaluate.holdout_metrics`) on the same holdout rows; cold pairs are dropped
as with MLlib's ``coldStartStrategy="drop"``.

Timed:

- MLlib: ``ALS(...).fit(train)`` plus counting its user and item factors;
- walsspark: :func:`walsspark.train.fit` (it lays out the data and leaves its factors
  materialized).

Runs are interleaved (MLlib/walsspark, then walsspark/MLlib, ...) so that machine noise hits
both; the first run of each method (cold JVM code paths, Python workers starting) is shown
and marked. MLlib is also timed once with its default 10 user and item blocks.

Example::

    python benchmarks/bench_train.py                      # ML-1M, defaults below
    python benchmarks/bench_train.py --data ../shared/data/ml-100k/u.data --repeats 5
    python benchmarks/bench_train.py --json out/bench.json
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere, without installing
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_DATA = "../shared/data/ml-1m/ratings.parquet"
ALTERNATIVE_DATA = "../shared/data/ml-100k/u.data"
# MLlib's ALS defaults for numUserBlocks and numItemBlocks.
MLLIB_DEFAULT_BLOCKS = 10
# Default lambda: of the two usual ALS-WR values, the one that gives the reference (MLlib)
# the better holdout RMSE on ML-1M with the other defaults (rank 64, 10 sweeps, 2 blocks,
# 20 % holdout, seed 42): 0.8661 with 0.05 against 0.8681 with 0.1 (walsspark: 0.8607 and
# 0.8627), so 0.05, which also gives walsspark its better RMSE.
DEFAULT_REG = 0.05


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The ratings options both benchmark scripts take."""
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA,
        help=(
            "ratings: parquet (columns --user-col, --item-col, --rating-col) or a MovieLens "
            f"file such as {ALTERNATIVE_DATA}; a relative path is looked up in the current "
            "directory, then relative to the repository root"
        ),
    )
    parser.add_argument("--format", default="auto", help="input format (see read_ratings)")
    parser.add_argument("--user-col", default="user_id", help="user id column (parquet/csv)")
    parser.add_argument("--item-col", default="item_id", help="item id column (parquet/csv)")
    parser.add_argument("--rating-col", default="rating", help="rating column (parquet/csv)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Train Spark MLlib ALS (explicit) and walsspark (unobserved_weight=0, "
            "reg_exponent=1: the same ALS-WR objective) on the same ratings and split; print "
            "fit times (median over interleaved repeats), their ratio and both holdout RMSEs."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_data_arguments(parser)
    parser.add_argument("--rank", type=int, default=64, help="number of latent factors")
    parser.add_argument("--sweeps", type=int, default=10, help="sweeps (MLlib maxIter)")
    parser.add_argument(
        "--reg", type=float, default=DEFAULT_REG, help="lambda (MLlib regParam, ALS-WR scaled)"
    )
    parser.add_argument("--holdout", type=float, default=0.2, help="holdout fraction")
    parser.add_argument("--seed", type=int, default=42, help="split and initialization seed")
    parser.add_argument(
        "--blocks", type=int, default=2, help="user blocks = item blocks, for both methods"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method")
    parser.add_argument("--master", default="local[2]", help="Spark master")
    parser.add_argument(
        "--skip-mllib-default-blocks",
        action="store_true",
        help=f"do not time MLlib once with its default {MLLIB_DEFAULT_BLOCKS} blocks",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this file")
    parser.add_argument(
        "--verbose", action="store_true", help="log walsspark's per-sweep progress to stderr"
    )
    args = parser.parse_args(argv)
    for name in ("rank", "sweeps", "blocks", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if not 0.0 < args.holdout < 1.0:
        parser.error("--holdout must be in (0, 1)")
    if args.reg < 0:
        parser.error("--reg must be >= 0")
    return args


def resolve_data(path: str) -> Path | None:
    """The ratings path: as given if absolute, else from the cwd, else from the repo root."""
    given = Path(path).expanduser()
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, REPO_ROOT / given]
    for candidate in candidates:
        if candidate.exists():
            return candidate.resolve()
    return None


# --------------------------------------------------------------------------------------
# Other processes' CPU use (contamination check, Linux /proc only)
# --------------------------------------------------------------------------------------


class ForeignCpuMonitor:
    """Samples the CPU time used by processes outside this benchmark's process tree.

    Every ``interval`` seconds it reads ``/proc/<pid>/stat`` of every process and adds up
    the CPU time gained by those that are neither this process nor its descendants (the
    Spark JVM and its Python workers). :meth:`seconds` is the running total, so the
    difference across a timed run tells how much CPU something else took meanwhile: on a
    2-core machine, anything beyond a fraction of a second means the run was contended.
    A process first seen after the monitor started counts with all its CPU time.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.available = os.path.isdir("/proc/self") and hasattr(os, "sysconf")
        self._ticks = os.sysconf("SC_CLK_TCK") if self.available else 100
        self._total = 0
        self._seen: dict[tuple[int, int], int] = {}  # (pid, start time) -> CPU ticks
        self._ours: set[tuple[int, int]] = set()  # (pid, start time) of our process tree
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_ticks = 0

    def start(self) -> ForeignCpuMonitor:
        if self.available:
            self._start_ticks = self._uptime_ticks()
            self._sample(first=True)
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def seconds(self) -> float:
        """Foreign CPU seconds so far (NaN without /proc); takes a fresh sample."""
        if not self.available:
            return math.nan
        with self._lock:
            self._sample_locked(first=False)
            return self._total / self._ticks

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _uptime_ticks(self) -> int:
        with open("/proc/uptime") as handle:
            return int(float(handle.read().split()[0]) * self._ticks)

    @staticmethod
    def _read_all() -> dict[int, tuple[int, int, int]]:
        """pid -> (ppid, start time, utime + stime) of every readable process."""
        table = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as handle:
                    text = handle.read()
            except OSError:
                continue
            fields = text[text.rfind(")") + 2 :].split()
            # fields[k] is stat field k + 3: ppid 4, utime 14, stime 15, starttime 22.
            table[int(name)] = (int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]))
        return table

    def _sample(self, first: bool = False) -> None:
        with self._lock:  # one sample at a time: each delta is taken against the last one
            self._sample_locked(first)

    def _sample_locked(self, first: bool) -> None:
        table = self._read_all()
        ours = {os.getpid()}
        grew = True
        while grew:  # descendants of this process
            grew = False
            for pid, (ppid, _, _) in table.items():
                if ppid in ours and pid not in ours:
                    ours.add(pid)
                    grew = True
        # A process once ours stays ours: the Spark JVM outlives the Python that started
        # it by a moment and is re-parented to init, where it would count as foreign with
        # all its CPU time.
        self._ours.update((pid, table[pid][1]) for pid in ours if pid in table)
        seen = {}
        for pid, (_, started, ticks) in table.items():
            if pid in ours or (pid, started) in self._ours:
                continue
            key = (pid, started)
            seen[key] = ticks
            if first:
                continue
            if key in self._seen:
                self._total += max(0, ticks - self._seen[key])
            elif started >= self._start_ticks:
                self._total += ticks
        self._seen = seen


def benchmark_session(args: argparse.Namespace, app_name: str):
    """The benchmarks' Spark session, set up alike in every script.

    One BLAS thread in the driver too (before numpy loads), as in the Spark workers; a
    checkpoint directory, because MLlib ALS checkpoints its factor RDDs every
    checkpointInterval (10) iterations only when one is set, and without it more than ~15
    iterations end in a StackOverflowError (seen here at --sweeps 20; walsspark cuts its
    own lineage); Spark's own logging at ERROR.
    """
    from walsspark.session import get_or_create_session, worker_environment

    for name, value in worker_environment().items():
        os.environ.setdefault(name, value)
    spark = get_or_create_session(master=args.master, app_name=app_name)
    spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="walsspark-bench-checkpoints-"))
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_benchmark_ratings(spark, data_path: Path, args: argparse.Namespace):
    """The ratings of ``--data`` (duplicates averaged): user, item, rating."""
    from walsspark.duplicates import resolve_duplicates
    from walsspark.ratings_read import read_ratings

    ratings = read_ratings(
        spark,
        str(data_path),
        fmt=args.format,
        user_col=args.user_col,
        item_col=args.item_col,
        rating_col=args.rating_col,
    ).select("user", "item", "rating")
    return resolve_duplicates(ratings, "mean")


def _foreign_note(run: dict) -> str:
    value = run.get("foreign_cpu_seconds", math.nan)
    return "" if math.isnan(value) else f"; other processes used {value:.1f} CPU s meanwhile"


# --------------------------------------------------------------------------------------
# One timed run of each method
# --------------------------------------------------------------------------------------


def run_mllib(train, holdout, args, num_blocks: int, metric_params, monitor) -> dict:
    """Fit MLlib ALS (timed: fit + forcing both factor DataFrames), then score it."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    from walsspark.evaluate import holdout_metrics

    als = ALS(
        rank=args.rank,
        maxIter=args.sweeps,
        regParam=args.reg,
        numUserBlocks=num_blocks,
        numItemBlocks=num_blocks,
        implicitPrefs=False,
        nonnegative=False,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        coldStartStrategy="drop",
        seed=args.seed,
    )
    foreign = monitor.seconds()
    start = time.perf_counter()
    model = als.fit(train)
    n_users = model.userFactors.count()
    n_items = model.itemFactors.count()
    seconds = time.perf_counter() - start
    foreign = monitor.seconds() - foreign

    def renamed(factors):
        return factors.select(F.col("id").cast("long").alias("id"), "features")

    metrics = holdout_metrics(
        renamed(model.userFactors), renamed(model.itemFactors), holdout, metric_params
    )
    return {
        "seconds": seconds,
        "foreign_cpu_seconds": foreign,
        "metrics": metrics,
        "num_users": n_users,
        "num_items": n_items,
        "model": model,
    }


def run_walsspark(spark, train, holdout, params, monitor) -> dict:
    """Fit walsspark (timed: fit, which leaves its factors materialized), then score it."""
    from walsspark.evaluate import holdout_metrics
    from walsspark.train import fit

    foreign = monitor.seconds()
    start = time.perf_counter()
    trained = fit(spark, train, params)
    seconds = time.perf_counter() - start
    foreign = monitor.seconds() - foreign
    metrics = holdout_metrics(trained.user_factors(), trained.item_factors(), holdout, params)
    # Drop the cached rating blocks: the next run must lay the data out again, not hit them.
    trained.release()
    history = [{"sweep": r.sweep, "loss": r.loss, "seconds": r.seconds} for r in trained.history]
    return {
        "seconds": seconds,
        "foreign_cpu_seconds": foreign,
        "fit_seconds_reported": trained.fit_seconds,
        "sweep_seconds_total": sum(r.seconds for r in trained.history),
        "history": history,
        "metrics": metrics,
    }


def mllib_native_rmse(model, holdout) -> float:
    """MLlib's own RMSE (transform + RegressionEvaluator): cross-checks the shared metric."""
    from pyspark.ml.evaluation import RegressionEvaluator

    evaluator = RegressionEvaluator(
        metricName="rmse", labelCol="rating", predictionCol="prediction"
    )
    return float(evaluator.evaluate(model.transform(holdout)))


def mllib_blas(spark) -> str:
    """Class names of the BLAS and LAPACK implementations MLlib's netlib loader picked."""
    jvm = getattr(spark, "_jvm", None)
    if jvm is None:
        return "unknown (no JVM gateway)"
    try:
        netlib = jvm.dev.ludovic.netlib
        blas = netlib.blas.BLAS.getInstance().getClass().getSimpleName()
        lapack = netlib.lapack.LAPACK.getInstance().getClass().getSimpleName()
    except Exception:  # noqa: BLE001 - best effort
        return "unknown"
    return f"{blas}, {lapack}"


def release(spark) -> None:
    """Drop the last run's objects and let Spark's cleaner free them before the next run.

    Without this, the JVM's garbage collection (and with it the cleanup of the previous
    run's shuffles, cached blocks and local checkpoints) would happen at some point inside
    a later timed run.
    """
    gc.collect()
    jvm = getattr(spark, "_jvm", None)
    if jvm is not None:
        try:
            jvm.System.gc()
        except Exception:  # noqa: BLE001 - best effort (e.g. Spark Connect has no JVM)
            return
        time.sleep(1.0)


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _rel(new: float, ref: float) -> float:
    return (new - ref) / ref if ref else math.nan


def summarize(runs: dict[str, list[dict]]) -> dict:
    out = {}
    for method, method_runs in runs.items():
        times = [r["seconds"] for r in method_runs]
        out[method] = {
            "seconds": times,
            "median": _median(times),
            "median_excluding_warmup": _median(times[1:]),
            "min": min(times),
        }
    return out


def format_report(result: dict) -> str:
    cfg, data, env = result["config"], result["data"], result["environment"]
    times, acc = result["times"], result["accuracy"]
    repeats = cfg["repeats"]
    lines = [
        "walsspark vs Spark MLlib ALS (explicit), same split, same objective (ALS-WR)",
        f"data     {data['path']}",
        f"ratings  {data['ratings']:,} (train {data['train']:,}, holdout {data['holdout']:,}); "
        f"train users {data['train_users']:,}, items {data['train_items']:,}",
        f"params   rank={cfg['rank']} sweeps={cfg['sweeps']} lambda={cfg['reg']} "
        f"blocks={cfg['blocks']}x{cfg['blocks']} seed={cfg['seed']} master={cfg['master']}",
        f"         walsspark: unobserved_weight=0, reg_exponent=1; "
        f"{repeats} interleaved runs per method (order alternates)",
        f"env      {env['cpu_count']} CPUs, pyspark {env['pyspark']}, Python {env['python']}, "
        f"MLlib BLAS/LAPACK: {env['mllib_blas']}",
        "",
    ]
    name_w = 22
    run_heads = [f"run {i + 1}{'*' if i == 0 else ''}" for i in range(repeats)]
    head = (
        f"{'fit seconds':<{name_w}}"
        + "".join(f"{h:>9}" for h in run_heads)
        + f"{'median':>9}{'med excl*':>11}{'min':>9}"
    )
    lines += [head, "-" * len(head)]
    labels = {"mllib": f"MLlib ALS ({cfg['blocks']} blocks)", "walsspark": "walsspark"}
    for method in ("mllib", "walsspark"):
        t = times[method]
        lines.append(
            f"{labels[method]:<{name_w}}"
            + "".join(f"{s:>9.2f}" for s in t["seconds"])
            + f"{t['median']:>9.2f}{t['median_excluding_warmup']:>11.2f}{t['min']:>9.2f}"
        )
    ratio = result["ratio"]
    lines.append(
        f"{'ratio walsspark/MLlib':<{name_w}}"
        + "".join(f"{r:>9.2f}" for r in ratio["per_run"])
        + f"{ratio['median']:>9.2f}{ratio['median_excluding_warmup']:>11.2f}{ratio['min']:>9.2f}"
    )
    for method in ("mllib", "walsspark"):
        foreign = [r.get("foreign_cpu_seconds", math.nan) for r in result["runs"][method]]
        if not all(math.isnan(f) for f in foreign):
            lines.append(
                f"{'  other procs CPU s':<{name_w}}"
                + "".join(f"{f:>9.1f}" for f in foreign)
                + f"   ({method} runs)"
            )
    lines.append(
        "* run 1 is the warm-up (first run of each method in this session); it counts in "
        "'median'. Ratio columns: per run pair, then ratio of medians / of mins."
    )
    order = ", ".join("/".join(pair) for pair in result["run_order"])
    lines.append(f"  run order: {order}")

    default_blocks = result.get("mllib_default_blocks")
    if default_blocks:
        ref = times["mllib"]["median_excluding_warmup"]
        if math.isnan(ref):
            ref = times["mllib"]["median"]
        secs = default_blocks["seconds"]
        if secs < ref:
            verdict = f"{MLLIB_DEFAULT_BLOCKS} blocks are faster ({ref / secs:.2f}x)"
        else:
            verdict = f"{cfg['blocks']} blocks are faster ({secs / ref:.2f}x)"
        lines += [
            "",
            f"MLlib with its default {MLLIB_DEFAULT_BLOCKS} blocks (1 run, after the others): "
            f"{secs:.2f} s vs {ref:.2f} s with {cfg['blocks']} blocks (median excl. warm-up)",
            f"  -> {verdict}; holdout RMSE {default_blocks['metrics']['rmse']:.4f}"
            + _foreign_note(default_blocks),
        ]

    m, w = acc["mllib"], acc["walsspark"]
    lines += [
        "",
        f"holdout (last run; {m['count']:,} scored, {m['cold_count']:,} cold pairs dropped "
        f"for MLlib, {w['cold_count']:,} for walsspark)",
        f"{'':<{name_w}}{'RMSE':>9}{'MAE':>9}",
        f"{labels['mllib']:<{name_w}}{m['rmse']:>9.4f}{m['mae']:>9.4f}",
        f"{'walsspark':<{name_w}}{w['rmse']:>9.4f}{w['mae']:>9.4f}",
        f"{'rel. diff (W-M)/M':<{name_w}}{acc['rmse_rel_diff'] * 100:>8.2f}%"
        f"{acc['mae_rel_diff'] * 100:>8.2f}%",
        f"RMSE spread over runs: MLlib {acc['mllib_rmse_spread']:.2e}, "
        f"walsspark {acc['walsspark_rmse_spread']:.2e}; MLlib's own RegressionEvaluator "
        f"on model.transform(holdout): {acc['mllib_native_rmse']:.4f}",
    ]

    last = result["walsspark_last_run"]
    per_sweep = " ".join(f"{h['seconds']:.2f}" for h in last["history"])
    lines += [
        "",
        f"walsspark last run: fit {last['seconds']:.2f} s = layout+init "
        f"{last['seconds'] - last['sweep_seconds_total']:.2f} s + sweeps "
        f"{last['sweep_seconds_total']:.2f} s",
        f"  per-sweep seconds: {per_sweep}",
        f"  loss after sweep 1 / last: {last['history'][0]['loss']:.6g} / "
        f"{last['history'][-1]['loss']:.6g}",
    ]
    lines += contention_warning(
        {method: result["runs"][method] for method in ("mllib", "walsspark")}, min_seconds=1.0
    )
    return "\n".join(lines)


def contention_warning(runs_by_label: dict[str, list[dict]], min_seconds: float) -> list[str]:
    """Warning lines for timed runs during which other processes used noticeable CPU."""
    contended = [
        f"{label} run {i + 1} ({r['foreign_cpu_seconds']:.1f} CPU s)"
        for label, runs in runs_by_label.items()
        for i, r in enumerate(runs)
        if r.get("foreign_cpu_seconds", 0.0) > max(min_seconds, 0.05 * r["seconds"])
    ]
    if not contended:
        return []
    return [
        "",
        "WARNING: other processes used CPU during timed runs: " + ", ".join(contended),
        "  timings may be contaminated; rerun on a quiet machine.",
    ]


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_path = resolve_data(args.data)
    if data_path is None:
        print(
            f"bench_train: ratings not found: {args.data} (looked in {Path.cwd()} and "
            f"{REPO_ROOT}). Expected ML-1M at {DEFAULT_DATA} or ML-100k at {ALTERNATIVE_DATA} "
            "relative to the repository root; pass --data PATH.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    from pyspark.sql import functions as F

    from walsspark.params import WALSParams
    from walsspark.splits import split_holdout

    spark = benchmark_session(args, "walsspark-bench")

    ratings = read_benchmark_ratings(spark, data_path, args)
    train, holdout = split_holdout(ratings, args.holdout, args.seed)
    train = train.cache()
    holdout = holdout.cache()
    n_train, n_holdout = train.count(), holdout.count()
    sizes = train.agg(
        F.countDistinct("user").alias("users"), F.countDistinct("item").alias("items")
    ).collect()[0]

    params = WALSParams(
        rank=args.rank,
        sweeps=args.sweeps,
        unobserved_weight=0.0,
        regularization=args.reg,
        reg_exponent=1.0,
        num_user_blocks=args.blocks,
        num_item_blocks=args.blocks,
        seed=args.seed,
    ).validate()

    monitor = ForeignCpuMonitor().start()
    runs: dict[str, list[dict]] = {"mllib": [], "walsspark": []}
    run_order: list[tuple[str, str]] = []
    last_model = None
    for repeat in range(args.repeats):
        order = ("mllib", "walsspark") if repeat % 2 == 0 else ("walsspark", "mllib")
        run_order.append(order)
        for method in order:
            release(spark)
            if method == "mllib":
                outcome = run_mllib(train, holdout, args, args.blocks, params, monitor)
                last_model = outcome.pop("model")
            else:
                outcome = run_walsspark(spark, train, holdout, params, monitor)
            runs[method].append(outcome)
            print(
                f"  run {repeat + 1}/{args.repeats} {method:<9} {outcome['seconds']:7.2f} s"
                f"  holdout RMSE {outcome['metrics']['rmse']:.4f}" + _foreign_note(outcome),
                file=sys.stderr,
                flush=True,
            )

    native_rmse = mllib_native_rmse(last_model, holdout)
    last_model = None

    default_blocks = None
    if not args.skip_mllib_default_blocks:
        release(spark)
        default_blocks = run_mllib(train, holdout, args, MLLIB_DEFAULT_BLOCKS, params, monitor)
        default_blocks.pop("model")
        print(
            f"  MLlib {MLLIB_DEFAULT_BLOCKS} blocks    {default_blocks['seconds']:7.2f} s"
            f"  holdout RMSE {default_blocks['metrics']['rmse']:.4f}"
            + _foreign_note(default_blocks),
            file=sys.stderr,
            flush=True,
        )

    monitor.stop()
    times = summarize(runs)
    per_run = [
        w["seconds"] / m["seconds"] for m, w in zip(runs["mllib"], runs["walsspark"], strict=True)
    ]
    mllib_metrics = runs["mllib"][-1]["metrics"]
    wals_metrics = runs["walsspark"][-1]["metrics"]

    def spread(method: str) -> float:
        values = [r["metrics"]["rmse"] for r in runs[method]]
        return max(values) - min(values)

    result = {
        "config": {
            "data": args.data,
            "rank": args.rank,
            "sweeps": args.sweeps,
            "reg": args.reg,
            "holdout": args.holdout,
            "seed": args.seed,
            "blocks": args.blocks,
            "repeats": args.repeats,
            "master": args.master,
            "walsspark_params": params.to_dict(),
        },
        "environment": {
            "python": platform.python_version(),
            "pyspark": spark.version,
            "cpu_count": os.cpu_count(),
            "mllib_blas": mllib_blas(spark),
            "platform": platform.platform(),
        },
        "data": {
            "path": str(data_path),
            "ratings": n_train + n_holdout,
            "train": n_train,
            "holdout": n_holdout,
            "train_users": int(sizes["users"]),
            "train_items": int(sizes["items"]),
        },
        "run_order": run_order,
        "runs": runs,
        "times": times,
        "ratio": {
            "per_run": per_run,
            "median": times["walsspark"]["median"] / times["mllib"]["median"],
            "median_excluding_warmup": (
                times["walsspark"]["median_excluding_warmup"]
                / times["mllib"]["median_excluding_warmup"]
                if args.repeats > 1
                else math.nan
            ),
            "min": times["walsspark"]["min"] / times["mllib"]["min"],
        },
        "accuracy": {
            "mllib": mllib_metrics,
            "walsspark": wals_metrics,
            "rmse_rel_diff": _rel(wals_metrics["rmse"], mllib_metrics["rmse"]),
            "mae_rel_diff": _rel(wals_metrics["mae"], mllib_metrics["mae"]),
            "mllib_rmse_spread": spread("mllib"),
            "walsspark_rmse_spread": spread("walsspark"),
            "mllib_native_rmse": native_rmse,
        },
        "mllib_default_blocks": default_blocks,
        "walsspark_last_run": runs["walsspark"][-1],
    }
    print(format_report(result))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nwrote {out}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
