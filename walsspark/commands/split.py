"""`walsspark split`: write a seeded train/test split of a ratings input as Parquet."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from walsspark.commands.inputs import check_apart, check_exists, read_input
from walsspark.errors import InputError
from walsspark.session import SparkSetup

log = logging.getLogger("walsspark")


def run_split(args: argparse.Namespace, setup: SparkSetup) -> dict[str, Any]:
    """Read, validate and split the ratings; write ``OUT/train`` and ``OUT/test``."""
    from pyspark.sql import functions as F

    from walsspark.duplicates import resolve_duplicates
    from walsspark.model import parquet_writer
    from walsspark.ratings_check import validate_ratings
    from walsspark.splits import split_ratings

    def check_paths(storage) -> None:
        check_exists(storage, args.input, "input")
        check_apart(storage, args.output, input=args.input)
        storage.check_output(args.output, args.overwrite)

    spark, storage = setup.start_checked(check_paths)
    options = {
        "input": args.input,
        "format": args.format,
        "user_col": args.user_col,
        "item_col": args.item_col,
        "rating_col": args.rating_col,
        "timestamp_col": args.timestamp_col,
        "id_type": args.id_type,
        "header": args.header,
    }
    ratings = read_input(spark, options, storage=storage)
    validate_ratings(ratings)
    if args.method == "time" and "timestamp" not in ratings.columns:
        raise InputError("the time split needs a timestamp column (pass --timestamp-col NAME)")
    ratings = resolve_duplicates(ratings, args.duplicates).cache()
    train, test = split_ratings(ratings, args.method, args.fraction, args.k, args.seed)
    # Written with the source's column names, so both halves read back like the input.
    names = {"user": args.user_col, "item": args.item_col, "rating": args.rating_col}
    names["timestamp"] = args.timestamp_col or "timestamp"

    def renamed(frame):
        return frame.select(*[F.col(c).alias(names.get(c, c)) for c in frame.columns])

    tables = [("train", parquet_writer(renamed(train))), ("test", parquet_writer(renamed(test)))]
    storage.write_output(args.output, args.overwrite, tables)
    log.info("split written to %s", storage.describe(args.output))
    counts = {
        name: spark.read.parquet(storage.uri(args.output, name)).count()
        for name in ("train", "test")
    }
    return {"output": storage.describe(args.output), "method": args.method, **counts}


def print_split_summary(summary: dict[str, Any]) -> None:
    print(
        f"{summary['method']} split written to {summary['output']}: "
        f"train/ {summary['train']} ratings, test/ {summary['test']} ratings"
    )
