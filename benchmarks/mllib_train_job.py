"""Spark MLlib ALS (explicit) as a user runs it: one process from command to saved model.

The MLlib side of ``benchmarks/bench_wall.py``, which runs it as a fresh process and times
it from spawn to exit. What a plain PySpark user writes: start a session, read the ratings,
``randomSplit`` 90/10, ``ALS(...).fit``, score the held-out part with
``RegressionEvaluator`` (cold pairs dropped, ``coldStartStrategy="drop"``), save the model.
Like the ``walsspark`` console script it leaves stopping Spark to the interpreter's exit.

The session gets the settings that ``walsspark train`` gives a session it starts itself
(:func:`walsspark.session.new_session_defaults`) and that are not walsspark-specific, so
that both processes start the same JVM: driver memory, no console progress bar, one BLAS
thread per task, walsspark's quiet log4j configuration (Spark's warnings only), the driver
bound to loopback and one shuffle partition per local core. walsspark's Arrow settings are
left out: nothing here moves data between the JVM and Python. walsspark is not imported
(its import time would not be MLlib's).

Printed: ``rmse <value>`` and, as the last line, JSON with the phase times (seconds):
``imports`` (pyspark), ``session``, ``read``, ``split``, ``fit``, ``evaluate``, ``save``, and
``start`` / ``end``, this script's first and last ``time.perf_counter()`` readings. On Linux
(``CLOCK_MONOTONIC``) and macOS that clock is shared by all processes, so the parent can
place them on its own timeline. ``read`` and ``split`` are lazy (a Parquet schema read, a
plan): the scan of the data happens inside ``fit``, as in any such script.

Example::

    python benchmarks/mllib_train_job.py --data ../shared/data/ml-1m/ratings.parquet \\
        --output /tmp/mllib-model
"""

import time

START = time.perf_counter()  # first: the parent measures interpreter start-up up to here

import argparse  # noqa: E402 - after the start mark on purpose
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

# walsspark's log4j configuration (Spark's warnings and errors only, no banner), read from
# the checkout rather than through the package, which this script must not import.
LOG4J_FILE = Path(__file__).resolve().parents[1] / "walsspark" / "log4j2.properties"
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Column names of the headerless MovieLens files (u.data, ratings.dat).
MOVIELENS_SCHEMA = "user_id INT, item_id INT, rating DOUBLE, timestamp LONG"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train Spark MLlib ALS (explicit) on ratings, report the holdout RMSE "
        "and save the model; phase times as JSON on the last line.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="ratings: parquet, u.data or ratings.dat")
    parser.add_argument("--output", required=True, help="model directory (overwritten)")
    parser.add_argument("--user-col", default="user_id")
    parser.add_argument("--item-col", default="item_id")
    parser.add_argument("--rating-col", default="rating")
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--reg", type=float, default=0.05, help="regParam")
    parser.add_argument("--holdout", type=float, default=0.1, help="randomSplit test share")
    parser.add_argument("--seed", type=int, default=42, help="split and ALS seed")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--log4j", default=str(LOG4J_FILE), help="log4j2 configuration file")
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a further Spark setting (repeatable), as for spark-submit",
    )
    return parser.parse_args(argv)


def local_cores(master: str) -> int | None:
    """Cores of a ``local[...]`` master (as walsspark counts them), None for a cluster."""
    match = re.match(r"^local(?:\[(\*|\d+)(?:,\s*\d+)?\])?$", master.strip())
    if match is None:
        return None
    if match.group(1) in (None, ""):
        return 1
    return os.cpu_count() or 1 if match.group(1) == "*" else int(match.group(1))


def session_settings(args: argparse.Namespace) -> dict[str, str]:
    """The Spark settings walsspark gives its own local session, minus its Arrow ones."""
    settings = {f"spark.executorEnv.{name}": "1" for name in BLAS_THREAD_VARIABLES}
    settings["spark.ui.showConsoleProgress"] = "false"
    settings["spark.driver.memory"] = args.driver_memory
    if Path(args.log4j).is_file():
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{args.log4j}"
    cores = local_cores(args.master)
    if cores is not None:
        # Spark's default of 200 shuffle partitions would give the evaluation's join 200
        # tiny tasks; walsspark sets one per local core, so MLlib gets the same.
        settings["spark.sql.shuffle.partitions"] = str(max(2, cores))
    for setting in args.conf:
        key, _, value = setting.partition("=")
        settings[key.strip()] = value
    return settings


def read(spark, args: argparse.Namespace):
    """The ratings as (user_id, item_id, rating) under the given column names."""
    path = args.data
    name = Path(path).name
    if name.endswith(".data") or name.endswith(".dat"):
        # MovieLens 100K (tab-separated) and 1M/10M ("::"-separated), no header.
        sep = "\t" if name.endswith(".data") else "::"
        frame = spark.read.csv(path, sep=sep, schema=MOVIELENS_SCHEMA)
        return frame.select("user_id", "item_id", "rating")
    if name.endswith(".csv"):
        frame = spark.read.csv(path, header=True, inferSchema=True)
    else:
        frame = spark.read.parquet(path)
    return frame.select(args.user_col, args.item_col, args.rating_col)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases: dict[str, float] = {}
    mark = START

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    lap("imports")

    if local_cores(args.master) is not None:
        # As walsspark does for a local master: nothing needs to reach the driver from
        # another host, and binding to loopback skips the host-name lookup.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    for name in BLAS_THREAD_VARIABLES:  # inherited by the JVM and its Python workers
        os.environ.setdefault(name, "1")
    builder = SparkSession.builder.appName("mllib-als").master(args.master)
    for key, value in session_settings(args).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if args.max_iter > 10:
        # MLlib checkpoints its factors every checkpointInterval (10) iterations only with a
        # checkpoint directory; without one, runs past ~15 iterations overflow the stack
        # (seen by bench_train at 20). Not set otherwise: it would add a checkpoint write.
        spark.sparkContext.setCheckpointDir(str(Path(args.output).parent / "checkpoints"))
    lap("session")

    ratings = read(spark, args)
    lap("read")

    train, test = ratings.randomSplit([1.0 - args.holdout, args.holdout], seed=args.seed)
    lap("split")

    als = ALS(
        rank=args.rank,
        maxIter=args.max_iter,
        regParam=args.reg,
        userCol=args.user_col,
        itemCol=args.item_col,
        ratingCol=args.rating_col,
        coldStartStrategy="drop",
        seed=args.seed,
    )
    model = als.fit(train)
    lap("fit")

    evaluator = RegressionEvaluator(
        metricName="rmse", labelCol=args.rating_col, predictionCol="prediction"
    )
    rmse = float(evaluator.evaluate(model.transform(test)))
    lap("evaluate")
    print(f"rmse {rmse:.6f}", flush=True)

    model.write().overwrite().save(args.output)
    lap("save")

    print(json.dumps({"rmse": rmse, "phases": phases, "start": START, "end": mark}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
