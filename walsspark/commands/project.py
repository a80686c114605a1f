"""`walsspark project`: fold-in of new users or items."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from walsspark.commands.inputs import (
    check_apart,
    check_exists,
    check_id_types,
    check_model,
    model_id_types,
    print_examples,
    read_input,
)
from walsspark.errors import InputError
from walsspark.session import SparkSetup

log = logging.getLogger("walsspark")


def run_project(args: argparse.Namespace, setup: SparkSetup) -> dict[str, Any]:
    """Read new ratings, project them, write ``factors/`` (and ``recommendations/``)."""
    from pyspark.sql import functions as F

    from walsspark.fold_in import check_foldable, fold_in
    from walsspark.model import SavedModel, parquet_writer
    from walsspark.recommend import recommend
    from walsspark.weighting import weight_columns

    if args.k is not None and args.k < 1:
        raise InputError(f"k must be >= 1, got {args.k}")

    def check_paths(storage) -> None:
        check_model(storage, args.model)
        check_exists(storage, args.input, "input")
        check_apart(storage, args.output, model_directory=args.model, input=args.input)
        storage.check_output(args.output, args.overwrite)

    spark, storage = setup.start_checked(check_paths)
    model = SavedModel.load(spark, args.model, storage)
    data = model.metadata["data"]
    options = {
        "input": args.input,
        "format": args.format,
        "user_col": args.user_col or data["user_col"],
        "item_col": args.item_col or data["item_col"],
        "rating_col": args.rating_col or data["rating_col"],
        "timestamp_col": None,
        "id_type": model_id_types(data, args.id_type),
        "header": args.header,
    }
    params = model.params
    check_foldable(params)
    ratings = read_input(spark, options, extra_cols=weight_columns(params), storage=storage)
    check_id_types(ratings, data, args.input)
    by_users = args.for_side == "users"
    fixed = model.item_factors if by_users else model.user_factors
    fixed_blocks = model.factor_blocks(spark, "items" if by_users else "users")
    factors, new = fold_in(ratings, fixed, params, data, args.for_side, args.input, fixed_blocks)
    factors = factors.cache()
    tables = {"factors": factors}
    if args.k is not None:
        seen = new.select(F.col("row").alias("query"), F.col("other").alias("candidate"))
        tables["recommendations"] = recommend(
            spark, factors.select("id", "features"), fixed, args.k, model.rank, seen=seen
        )

    storage.write_output(
        args.output, args.overwrite, [(n, parquet_writer(t)) for n, t in tables.items()]
    )
    log.info("projected factors written to %s", storage.describe(args.output))
    written = spark.read.parquet(storage.uri(args.output, "factors"))
    summary = {
        "output": storage.describe(args.output),
        "for": args.for_side,
        "rows": written.count(),
        "without_known_ratings": written.filter("rated = 0").count(),
        "examples": [],
    }
    if args.k is not None:
        summary["examples"] = (
            spark.read.parquet(storage.uri(args.output, "recommendations"))
            .orderBy("id")
            .limit(3)
            .collect()
        )
    return summary


def print_project_summary(summary: dict[str, Any]) -> None:
    what = summary["for"][:-1]
    print(f"projected {summary['rows']} new {summary['for']} into {summary['output']}")
    if summary["without_known_ratings"]:
        print(
            f"walsspark: warning: {summary['without_known_ratings']} new {summary['for']} rated "
            "nothing the model knows and got zero factors",
            file=sys.stderr,
        )
    print_examples(summary["examples"], what)
