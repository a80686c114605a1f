"""`walsspark evaluate`: rating and ranking metrics of a saved model on a test set."""

from __future__ import annotations

import argparse
import json
import logging
import math
from typing import Any

from walsspark.commands.inputs import check_apart, check_exists, check_model, read_like_training
from walsspark.errors import InputError
from walsspark.session import SparkSetup

log = logging.getLogger("walsspark")


def run_evaluate(args: argparse.Namespace, setup: SparkSetup) -> dict[str, Any]:
    """Score the test ratings and the top-K lists of the test users; write the JSON."""
    from pyspark.sql import functions as F

    from walsspark.duplicates import resolve_duplicates
    from walsspark.evaluate import holdout_metrics, ranking_metrics
    from walsspark.model import SavedModel
    from walsspark.recommend import recommend, recommend_from_blocks

    if args.k < 1:
        raise InputError(f"k must be >= 1, got {args.k}")
    if args.min_rating is not None and not math.isfinite(args.min_rating):
        raise InputError(f"min rating must be a finite number, got {args.min_rating}")
    output = args.output or f"{args.model.rstrip('/')}-evaluation"

    def check_paths(storage) -> None:
        check_apart(
            storage,
            output,
            model_directory=args.model,
            test_ratings=args.test,
            train_ratings=args.train,
        )
        storage.check_output(output, args.overwrite, refuse_empty=True)
        check_model(storage, args.model)
        check_exists(storage, args.test, "test ratings")
        check_exists(storage, args.train, "train ratings")

    spark, storage = setup.start_checked(check_paths)
    model = SavedModel.load(spark, args.model, storage)
    params = model.params
    data = model.metadata["data"]
    text_options = {"id_type": args.id_type, "header": args.header}
    test = read_like_training(
        spark, model, args.test, args.format, args.user_col, args.item_col, storage, **text_options
    )
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
            spark,
            model,
            args.train,
            args.train_format,
            args.user_col,
            args.item_col,
            storage,
            **text_options,
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
        "model": storage.describe(args.model),
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
    # One JSON line in one part file, on every file system: spark.read.json reads it back.
    text = json.dumps(summary)
    storage.write_output(output, args.overwrite, [("", storage.text_writer(text))])
    log.info("evaluation written to %s", storage.describe(output))
    summary["output"] = storage.describe(output)
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
