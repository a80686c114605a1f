"""`walsspark recommend`: batch top-K from a saved model."""

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
    print_examples,
    read_input,
    read_like_training,
)
from walsspark.errors import InputError
from walsspark.options import SYNTHETIC_INPUT, TRAIN_DEFAULTS
from walsspark.session import SparkSetup

log = logging.getLogger("walsspark")


def seen_pairs(spark, storage, model, args) -> tuple[Any, str]:
    """The (user, item) pairs the model was trained on, and where they came from: the
    ``--ratings`` file when given, else the model's saved blocks, else its training input
    read and split again (models saved without blocks)."""
    from pyspark.sql import functions as F

    from walsspark.duplicates import resolve_duplicates
    from walsspark.splits import split_ratings

    data = model.metadata["data"]
    blocks = None if args.ratings else model.factor_blocks(spark, "users")
    if blocks is not None:
        # The pairs trained on are in the saved blocks: the input is not read again.
        from walsspark.block_tables import training_pairs

        pairs = training_pairs(blocks)
        return (
            pairs.select(F.col("query").alias("user"), F.col("candidate").alias("item")),
            "the training pairs saved with the model (user_blocks/)",
        )
    if args.ratings:
        ratings = read_like_training(
            spark,
            model,
            args.ratings,
            args.ratings_format,
            args.user_col,
            args.item_col,
            storage,
            id_type=args.ratings_id_type,
            header=args.ratings_header,
        )
        source = f"ratings {args.ratings}"
    else:
        options = {key: data.get(key) for key in TRAIN_DEFAULTS if key in data}
        if options.get("input") != SYNTHETIC_INPUT and not storage.exists(str(options["input"])):
            raise InputError(
                f"the model's training input {options['input']} is gone: pass --ratings PATH "
                "for the pairs to exclude, or --include-seen"
            )
        ratings = read_input(spark, options, storage=storage)
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


def _read_ids(spark, storage, path: str, id_type: str):
    """The distinct ids of ``path`` (one per line) as the model's id type, and the lines
    that are not ids of that type (``raw``: for integer ids, text that is no integer).

    Lines that cannot be such an id are unknown ids, reported with the others; they do
    not fail the run.
    """
    from pyspark.sql import functions as F

    text = spark.read.text(storage.uri(path))
    lines = text.select(F.trim("value").alias("id")).filter("id != ''")
    cast = lines.selectExpr("id as raw", f"try_cast(id as {id_type}) as id").cache()
    if cast.limit(1).count() == 0:
        raise InputError(f"no ids in {path} (one id per line expected)")
    not_ids = cast.filter("id is null").select("raw").distinct()
    return cast.filter("id is not null").select("id").distinct(), not_ids


def run_recommend(args: argparse.Namespace, setup: SparkSetup) -> dict[str, Any]:
    """Load the model, work out the seen pairs, write the top-K table."""
    from pyspark.sql import functions as F

    from walsspark.model import SavedModel, parquet_writer
    from walsspark.recommend import recommend, recommend_from_blocks

    if args.k < 1:
        raise InputError(f"k must be >= 1, got {args.k}")
    if not args.max_candidate_mb > 0:
        raise InputError(f"max candidate size must be > 0 MB, got {args.max_candidate_mb}")
    output = args.output or f"{args.model.rstrip('/')}-recommendations-{args.for_side}"

    def check_paths(storage) -> None:
        check_apart(
            storage, output, model_directory=args.model, ratings=args.ratings, ids_file=args.ids
        )
        # Any existing path (even an empty directory) is refused without --overwrite.
        storage.check_output(output, args.overwrite, refuse_empty=True)
        check_model(storage, args.model)
        check_exists(storage, args.ids, "ids file")
        check_exists(storage, args.ratings, "ratings")

    spark, storage = setup.start_checked(check_paths)
    model = SavedModel.load(spark, args.model, storage)
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
            pairs, source = seen_pairs(spark, storage, model, args)
            query_col, cand_col = ("user", "item") if by_users else ("item", "user")
            seen = pairs.select(F.col(query_col).alias("query"), F.col(cand_col).alias("candidate"))
        if args.ids:
            id_type = query.schema["id"].dataType.simpleString()
            wanted, not_ids = _read_ids(spark, storage, args.ids, id_type)
            wanted = wanted.cache()
            missing = wanted.join(query.select("id"), "id", "left_anti")
            unknown_count = missing.count() + not_ids.count()
            unknown = [row["raw"] for row in not_ids.orderBy("raw").limit(5).collect()]
            unknown += [row["id"] for row in missing.orderBy("id").limit(5).collect()]
            unknown = unknown[:5]
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

    if args.format == "parquet":
        table = recommendations
    else:
        table = recommendations.select(
            F.concat_ws(
                ",",
                F.col("id").cast("string"),
                F.array_join(F.transform("recommendations", lambda r: r["id"]), ","),
            ).alias("value")
        )

    def write(target: str, mode: str) -> None:
        if args.format == "parquet":
            parquet_writer(table)(target, mode)
        else:
            table.write.mode(mode).text(target)

    # The top-K lists are computed as they are written: most of the run's work follows.
    log.info("writing recommendations to %s", storage.describe(output))
    storage.write_output(output, args.overwrite, [("", write)])
    log.info("recommendations written to %s", storage.describe(output))
    written = spark.read.parquet(storage.uri(output)) if args.format == "parquet" else None
    return {
        "output": storage.describe(output),
        "for": args.for_side,
        "k": args.k,
        "seen": source,
        "rows": written.count() if written is not None else None,
        "unknown_ids": unknown_count,
        "unknown_examples": unknown,
        "examples": written.orderBy("id").limit(3).collect() if written is not None else [],
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
