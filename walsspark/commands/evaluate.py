"""`walsspark evaluate`: rating and ranking metrics of a saved model on a test set."""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import Any

from walsspark.commands.inputs import check_model_path, read_like_training
from walsspark.errors import InputError


def run_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Score the test ratings and the top-K lists of the test users; write the JSON."""
    from pyspark.sql import functions as F

    from walsspark.evaluate import holdout_metrics, ranking_metrics
    from walsspark.model import WALSModel, is_local_path, local_path
    from walsspark.ratings_io import resolve_duplicates
    from walsspark.recommend import recommend, recommend_from_blocks
    from walsspark.session import get_or_create_session

    if args.k < 1:
        raise InputError(f"k must be >= 1, got {args.k}")
    output = args.output or f"{args.model.rstrip('/')}-evaluation.json"
    if not is_local_path(output):
        raise InputError(f"the evaluation JSON needs a local path, not {output}")
    output = local_path(output)
    if os.path.lexists(output) and not args.overwrite:
        raise InputError(f"output file exists: {output} (pass --overwrite to replace it)")
    if os.path.isdir(output):
        raise InputError(f"output path is a directory: {output}")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise InputError(f"cannot write the output file into {parent}")
    if args.min_rating is not None and not math.isfinite(args.min_rating):
        raise InputError(f"min rating must be a finite number, got {args.min_rating}")
    check_model_path(args.model)
    for name, path in (("test", args.test), ("train", args.train)):
        if path and is_local_path(path) and not os.path.exists(local_path(path)):
            raise InputError(f"{name} ratings not found: {path}")

    spark = get_or_create_session(master=args.master)
    model = WALSModel.load(spark, args.model)
    params = model.params
    data = model.metadata["data"]
    test = read_like_training(spark, model, args.test, args.format, args.user_col, args.item_col)
    # Repeated pairs are merged as training merged them ('last' needs timestamps the
    # test read does not keep: mean).
    policy = "mean" if params.duplicates == "last" else params.duplicates
    test = resolve_duplicates(test.select("user", "item", "rating"), policy).cache()
    total = test.count()
    if total == 0:
        raise InputError(f"no ratings in the test set {args.test}")
    users = model.user_factors.select(F.col("id").alias("user"))
    items = model.item_factors.select(F.col("id").alias("item"))
    known = test.join(users, "user", "left_semi").join(items, "item", "left_semi").cache()
    scored = known.count()
    cold_users = test.select("user").distinct().join(users, "user", "left_anti").count()

    # Relevant: every test pair (implicit: r > 0), or those rated at least --min-rating.
    threshold = args.min_rating
    relevant = known
    if threshold is not None:
        relevant = known.filter(F.col("rating") >= F.lit(threshold))
    elif params.implicit_prefs:
        relevant = known.filter(F.col("rating") > 0)
    relevant = relevant.select("user", "item")
    relevant_rule = "every test pair"
    if threshold is not None:
        relevant_rule = f"rating >= {threshold:g}"
    elif params.implicit_prefs:
        relevant_rule = "rating > 0"

    if args.train:
        train = read_like_training(
            spark, model, args.train, args.train_format, args.user_col, args.item_col
        )
        test_users = relevant.select(F.col("user").alias("id")).distinct()
        recommendations = recommend(
            spark,
            model.user_factors.join(test_users, "id", "left_semi"),
            model.item_factors,
            args.k,
            model.rank,
            seen=train.select(F.col("user").alias("query"), F.col("item").alias("candidate")),
            num_candidates=data.get("num_items"),
        )
        excluded = f"ratings {args.train}"
    else:
        query_blocks = model.factor_blocks(spark, "users")
        if query_blocks is None:
            raise InputError(
                "this model has no saved training pairs (user_blocks/): pass --train PATH"
            )
        recommendations = recommend_from_blocks(
            query_blocks,
            model.factor_blocks(spark, "items"),
            args.k,
            model.rank,
            num_candidates=data["num_items"],
        )
        excluded = "the training pairs saved with the model"
    metrics: dict[str, Any] = ranking_metrics(
        recommendations, relevant, args.k, int(data.get("num_items") or items.count())
    )
    if not params.implicit_prefs:
        rating = holdout_metrics(model.user_factors, model.item_factors, known, params)
        metrics.update(rmse=rating["rmse"], mae=rating["mae"])
    summary = {
        "model": os.path.abspath(args.model),
        "test": args.test,
        "k": args.k,
        "excluded": excluded,
        "relevant": relevant_rule,
        "test_ratings": total,
        "scored_ratings": scored,
        "cold_ratings": total - scored,
        "cold_users": cold_users,
        "metrics": {
            name: (None if isinstance(value, float) and math.isnan(value) else value)
            for name, value in metrics.items()
        },
    }
    staging = f"{output}.tmp-{os.getpid()}"
    try:
        with open(staging, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(summary, indent=2) + "\n")
        os.replace(staging, output)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    summary["output"] = output
    return summary


def print_evaluate_summary(summary: dict[str, Any]) -> None:
    print(f"evaluation written to {summary['output']}")
    print(
        f"test: {summary['test_ratings']} ratings, {summary['scored_ratings']} scored, "
        f"{summary['cold_ratings']} cold (user or item not in the model; "
        f"{summary['cold_users']} users)"
    )
    print(f"relevant: {summary['relevant']}; excluded from the lists: {summary['excluded']}")
    print(f"{'metric':<14}{'value':>10}")
    for name, value in summary["metrics"].items():
        if value is None:
            shown = "n/a"
        else:
            shown = f"{value:d}" if isinstance(value, int) else f"{value:.4f}"
        print(f"{name:<14}{shown:>10}")
