"""`walsspark recommend`: batch top-K from a saved model."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from walsspark.commands.inputs import (
    check_id_types,
    check_model_path,
    print_examples,
    read_input,
    read_like_training,
)
from walsspark.errors import InputError
from walsspark.options import SYNTHETIC_INPUT, TRAIN_DEFAULTS


def seen_pairs(spark, model, args) -> tuple[Any, str]:
    """The (user, item) pairs the model was trained on, and where they came from."""
    from walsspark.ratings_io import resolve_duplicates
    from walsspark.splits import split_ratings

    data = model.metadata["data"]
    if args.ratings:
        ratings = read_like_training(
            spark, model, args.ratings, args.ratings_format, args.user_col, args.item_col
        )
        source = f"ratings {args.ratings}"
    else:
        options = {key: data.get(key) for key in TRAIN_DEFAULTS if key in data}
        if options.get("input") != SYNTHETIC_INPUT and not os.path.exists(str(options["input"])):
            raise InputError(
                f"the model's training input {options['input']} is gone: pass --ratings PATH "
                "for the pairs to exclude, or --include-seen"
            )
        ratings = read_input(spark, options)
        params = model.params
        if data.get("timestamp_col") is None and params.duplicates == "last":
            raise InputError("cannot recompute the training pairs: pass --ratings PATH")
        keep = ["timestamp"] if "timestamp" in ratings.columns else []
        ratings = resolve_duplicates(ratings.select("user", "item", "rating", *keep), "sum")
        ratings, _ = split_ratings(
            ratings, params.split, params.holdout_fraction, params.holdout_k, params.seed
        )
        source = f"the model's training input {options['input']} (holdout removed)"
        check_id_types(ratings, data, source)
    return ratings.select("user", "item"), source


def _read_ids(spark, path: str, id_type: str):
    from pyspark.sql import functions as F

    from walsspark.model import is_local_path, local_path

    if is_local_path(path) and not os.path.exists(local_path(path)):
        raise InputError(f"ids file not found: {path}")

    lines = spark.read.text(path).select(F.trim("value").alias("id")).filter("id != ''")
    cast = lines.selectExpr("id as raw", f"try_cast(id as {id_type}) as id")
    bad = cast.filter("id is null").limit(3).collect()
    if bad:
        raise InputError(f"ids in {path} are not of the model's id type {id_type}: {bad[0].raw!r}")
    if cast.limit(1).count() == 0:
        raise InputError(f"no ids in {path} (one id per line expected)")
    return cast.select("id").distinct()


def run_recommend(args: argparse.Namespace) -> dict[str, Any]:
    """Load the model, work out the seen pairs, write the top-K table."""
    from pyspark.sql import functions as F

    from walsspark.model import (
        WALSModel,
        check_output_path,
        is_local_path,
        local_path,
        spark_path,
        write_directory_atomically,
    )
    from walsspark.recommend import recommend, recommend_from_blocks
    from walsspark.session import get_or_create_session

    if args.k < 1:
        raise InputError(f"k must be >= 1, got {args.k}")
    if not args.max_candidate_mb > 0:
        raise InputError(f"max candidate size must be > 0 MB, got {args.max_candidate_mb}")
    output = args.output or f"{args.model.rstrip('/')}-recommendations-{args.for_side}"
    if is_local_path(output) and is_local_path(args.model):
        # Refuse any existing path (even an empty directory) without --overwrite, and an
        # output that contains or lies inside the model (--overwrite would delete it).
        if os.path.lexists(local_path(output)) and not args.overwrite:
            raise InputError(f"output path exists: {output} (pass --overwrite to replace it)")
        target = os.path.realpath(local_path(output))
        model_dir = os.path.realpath(local_path(args.model))
        if os.path.commonpath([target, model_dir]) in (target, model_dir):
            raise InputError(f"output path {output} overlaps the model directory {args.model}")
    check_output_path(output, args.overwrite)
    # Local paths are checked before Spark starts, so its start-up chatter does not
    # precede the error line (WALSModel.load and _read_ids check them again).
    check_model_path(args.model)
    if args.ids and is_local_path(args.ids) and not os.path.exists(local_path(args.ids)):
        raise InputError(f"ids file not found: {args.ids}")
    spark = get_or_create_session(master=args.master)
    model = WALSModel.load(spark, args.model)
    by_users = args.for_side == "users"
    data = model.metadata["data"]
    # Models since the recommendation work record their id counts: no count job.
    num_candidates = data.get("num_items" if by_users else "num_users")
    max_candidate_bytes = int(args.max_candidate_mb * 1024 * 1024)
    query_blocks = model.factor_blocks(spark, args.for_side)
    unknown: list = []
    unknown_count = 0
    if query_blocks is not None and not args.ratings and not args.ids:
        # The saved training blocks: factors and exactly the pairs trained on, scored as
        # they lie (no input to re-read, nothing shuffled by query).
        recommendations = recommend_from_blocks(
            query_blocks,
            model.factor_blocks(spark, "items" if by_users else "users"),
            args.k,
            model.rank,
            num_candidates=num_candidates,
            exclude_seen=not args.include_seen,
            max_candidate_bytes=max_candidate_bytes,
        )
        source = (
            "none (--include-seen)"
            if args.include_seen
            else "the training pairs saved with the model (user_blocks/, item_blocks/)"
        )
    else:
        query, candidates = (
            (model.user_factors, model.item_factors)
            if by_users
            else (model.item_factors, model.user_factors)
        )
        seen, source = None, "none (--include-seen)"
        if not args.include_seen:
            pairs, source = seen_pairs(spark, model, args)
            query_col, cand_col = ("user", "item") if by_users else ("item", "user")
            seen = pairs.select(F.col(query_col).alias("query"), F.col(cand_col).alias("candidate"))
        if args.ids:
            id_type = query.schema["id"].dataType.simpleString()
            wanted = _read_ids(spark, args.ids, id_type).cache()
            missing = wanted.join(query.select("id"), "id", "left_anti")
            unknown_count = missing.count()
            unknown = [row["id"] for row in missing.orderBy("id").limit(5).collect()]
            query = query.join(wanted, "id", "left_semi")
        recommendations = recommend(
            spark,
            query,
            candidates,
            args.k,
            model.rank,
            seen=seen,
            max_candidate_bytes=max_candidate_bytes,
            num_candidates=num_candidates,
        )

    def write(staging: str) -> None:
        if args.format == "parquet":
            recommendations.write.parquet(spark_path(staging))
        else:
            lines = recommendations.select(
                F.concat_ws(
                    ",",
                    F.col("id").cast("string"),
                    F.array_join(F.transform("recommendations", lambda r: r["id"]), ","),
                ).alias("value")
            )
            lines.write.text(spark_path(staging))

    write_directory_atomically(output, args.overwrite, write)
    written = spark.read.parquet(spark_path(output)).count() if args.format == "parquet" else None
    return {
        "output": os.path.abspath(output),
        "for": args.for_side,
        "k": args.k,
        "seen": source,
        "rows": written,
        "unknown_ids": unknown_count,
        "unknown_examples": unknown,
        "examples": spark.read.parquet(spark_path(output)).orderBy("id").limit(3).collect()
        if args.format == "parquet"
        else [],
    }


def print_recommend_summary(summary: dict[str, Any]) -> None:
    print(f"top-{summary['k']} for every {summary['for'][:-1]} written to {summary['output']}")
    print(f"excluded seen pairs from: {summary['seen']}")
    if summary["rows"] is not None:
        print(f"{summary['rows']} rows")
    if summary["unknown_ids"]:
        print(
            f"walsspark: warning: {summary['unknown_ids']} requested ids are not in the model "
            "and got no recommendations "
            f"(e.g. {', '.join(map(repr, summary['unknown_examples']))})",
            file=sys.stderr,
        )
    print_examples(summary["examples"], summary["for"][:-1])
