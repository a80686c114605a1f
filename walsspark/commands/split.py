"""`walsspark split`: write a seeded train/test split of a ratings input as Parquet."""

from __future__ import annotations

import argparse
import os
from typing import Any

from walsspark.commands.inputs import read_input
from walsspark.errors import InputError


def run_split(args: argparse.Namespace) -> dict[str, Any]:
    """Read, validate and split the ratings; write ``OUT/train`` and ``OUT/test``."""
    from pyspark.sql import functions as F

    from walsspark.model import check_output_path, spark_path, write_directory_atomically
    from walsspark.ratings_io import resolve_duplicates, validate_ratings
    from walsspark.session import get_or_create_session
    from walsspark.splits import split_ratings

    check_output_path(args.output, args.overwrite)
    spark = get_or_create_session(master=args.master)
    options = {
        "input": args.input,
        "format": args.format,
        "user_col": args.user_col,
        "item_col": args.item_col,
        "rating_col": args.rating_col,
        "timestamp_col": args.timestamp_col,
    }
    ratings = read_input(spark, options)
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

    def write(staging: str) -> None:
        renamed(train).write.parquet(spark_path(staging, "train"))
        renamed(test).write.parquet(spark_path(staging, "test"))

    write_directory_atomically(args.output, args.overwrite, write)
    counts = {
        name: spark.read.parquet(spark_path(args.output, name)).count()
        for name in ("train", "test")
    }
    return {"output": os.path.abspath(args.output), "method": args.method, **counts}


def print_split_summary(summary: dict[str, Any]) -> None:
    print(
        f"{summary['method']} split written to {summary['output']}: "
        f"train/ {summary['train']} ratings, test/ {summary['test']} ratings"
    )
