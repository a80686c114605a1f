"""`walsspark train`: read, validate, train, evaluate, save (and recommend)."""

from __future__ import annotations

import logging
import math
from typing import Any

from walsspark.commands.inputs import check_apart, check_exists, print_examples, read_input
from walsspark.errors import InputError
from walsspark.options import SYNTHETIC_INPUT
from walsspark.params import WALSParams
from walsspark.session import SparkSetup

log = logging.getLogger("walsspark")


def params_from_options(options: dict[str, Any]) -> WALSParams:
    return WALSParams.from_dict(options).validate()


def run_train(options: dict[str, Any], setup: SparkSetup) -> dict[str, Any]:
    """Read, validate, train, evaluate and save; return a summary."""
    from walsspark.duplicates import resolve_duplicates
    from walsspark.model import save_model
    from walsspark.ratings_check import validate_ratings
    from walsspark.ratings_read import RAW_SOURCE_ATTR, weight_alias
    from walsspark.splits import split_ratings
    from walsspark.train import fit
    from walsspark.weighting import check_weights, entry_weights, weight_columns

    params = params_from_options(options)
    recommendations_path = None
    if options["recommend_k"] is not None:
        k = options["recommend_k"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"recommend_k must be an integer >= 1, got {k!r}")
        recommendations_path = options["recommendations"] or (
            f"{options['output'].rstrip('/')}-recommendations"
        )

    def check_paths(storage) -> None:
        check_exists(storage, options["input"], "input")
        check_apart(storage, options["output"], input=options["input"])
        storage.check_output(options["output"], options["overwrite"])
        if recommendations_path is not None:
            check_apart(
                storage, recommendations_path, input=options["input"], model=options["output"]
            )
            storage.check_output(recommendations_path, options["overwrite"])

    spark, storage = setup.start_checked(check_paths)
    extra = weight_columns(params)
    ratings = read_input(spark, options, extra_cols=extra, storage=storage)
    # Read once: the validation pass fills a cache that the merging of duplicates then
    # reads (ML-1M Parquet: the second read and parse cost about a second). Not when the
    # ratings are text to parse, which validation reads raw to name non-numeric ones.
    read_once = RAW_SOURCE_ATTR not in vars(ratings)
    input_cache = ratings.cache() if read_once else None
    validate_ratings(ratings)
    check_weights(ratings, params)
    ratings = resolve_duplicates(ratings, params.duplicates)
    keep = ["timestamp"] if params.split == "time" and "timestamp" in ratings.columns else []
    ratings = ratings.select(
        "user", "item", "rating", *keep, *[weight_alias(c) for c in extra]
    ).cache()
    train, holdout = split_ratings(
        ratings, params.split, params.holdout_fraction, params.holdout_k, params.seed
    )
    train = train.cache()
    if train.limit(1).count() == 0:
        raise InputError("no ratings left for training after the holdout split")
    if input_cache is not None:
        # The merged ratings are cached or in shuffle files from here on.
        input_cache.unpersist()

    # Targets and per-entry confidences (implicit feedback, weight schemes); per-id
    # weights come from the training split, for the holdout too.
    entries = entry_weights(train, params)
    holdout = entry_weights(holdout, params, reference=train).cache()
    # Holdout metrics after every sweep, scored inside the item half-sweeps.
    trained = fit(
        spark,
        entries.cache() if params.per_entry_weights else entries,
        params,
        holdout if params.has_holdout else None,
    )
    # The factor blocks (factors with the training pairs, per block) are saved with the
    # model and are what the recommendation tables are scored from.
    factor_blocks = {
        "users": trained.factor_blocks("user").cache(),
        "items": trained.factor_blocks("item").cache(),
    }
    # The last sweep's holdout metrics are the model's evaluation.
    evaluation = trained.history[-1].metrics if params.has_holdout else None
    metadata = {
        "params": params.to_dict(),
        "data": {
            # Where the ratings were, as the run resolved it (an absolute path or a URI),
            # so that a later run elsewhere finds the same data.
            "input": options["input"]
            if options["input"] == SYNTHETIC_INPUT
            else storage.describe(options["input"]),
            "format": options["format"],
            "user_col": options["user_col"],
            "item_col": options["item_col"],
            "rating_col": options["rating_col"],
            "timestamp_col": options["timestamp_col"],
            "user_id_type": trained.users.id_type,
            "item_id_type": trained.items.id_type,
            "num_train_ratings": trained.num_ratings,
            "num_users": trained.users.num_ids(),
            "num_items": trained.items.num_ids(),
            "num_user_blocks": trained.users.num_blocks,
            "num_item_blocks": trained.items.num_blocks,
        },
        "history": [
            {
                "sweep": r.sweep,
                "loss": r.loss,
                "seconds": round(r.seconds, 3),
                **({"holdout": _sweep_metrics(r.metrics)} if r.metrics is not None else {}),
            }
            for r in trained.history
        ],
        "sweeps_run": len(trained.history),
        "fit_seconds": round(trained.fit_seconds, 3),
        "evaluation": finite_or_none(evaluation),
    }
    save_model(
        options["output"],
        trained.user_factors(),
        trained.item_factors(),
        metadata,
        options["overwrite"],
        factor_blocks=factor_blocks,
        storage=storage,
    )
    log.info("model written to %s", storage.describe(options["output"]))
    summary = {"output": storage.describe(options["output"]), **metadata}
    if recommendations_path is not None:
        summary["recommendations"] = write_recommendation_tables(
            spark,
            storage,
            factor_blocks,
            metadata["data"],
            options["recommend_k"],
            params.rank,
            recommendations_path,
            options["overwrite"],
        )
    for frame in factor_blocks.values():
        frame.unpersist()
    trained.release()
    return summary


def write_recommendation_tables(
    spark, storage, factor_blocks: dict, data: dict, k: int, rank: int, path: str, overwrite: bool
) -> dict[str, Any]:
    """Top-K items per user (``users/``) and users per item (``items/``), seen excluded.

    Scored straight from the training blocks (:func:`walsspark.recommend.recommend_from_blocks`):
    the blocks carry the pairs trained on, so nothing is read or shuffled again.
    """
    from walsspark.model import parquet_writer
    from walsspark.recommend import recommend_from_blocks

    users, items = factor_blocks["users"], factor_blocks["items"]
    tables = {
        "users": recommend_from_blocks(users, items, k, rank, num_candidates=data["num_items"]),
        "items": recommend_from_blocks(items, users, k, rank, num_candidates=data["num_users"]),
    }
    storage.write_output(path, overwrite, [(n, parquet_writer(t)) for n, t in tables.items()])
    log.info("recommendations written to %s", storage.describe(path))
    examples = {
        name: spark.read.parquet(storage.uri(path, name)).orderBy("id").limit(3).collect()
        for name in tables
    }
    return {"path": storage.describe(path), "k": k, "examples": examples}


def _sweep_metrics(metrics: dict) -> dict | None:
    return finite_or_none({k: metrics[k] for k in ("rmse", "mae", "rwse", "loss")})


def finite_or_none(metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in metrics.items()
    }


def print_train_summary(summary: dict[str, Any]) -> None:
    history = summary["history"]
    print(f"model written to {summary['output']}")
    print(
        f"trained {summary['data']['num_train_ratings']} ratings, "
        f"rank {summary['params']['rank']}, {len(history)} sweeps in "
        f"{summary['fit_seconds']:.1f} s; final loss {history[-1]['loss']:.6g}"
    )
    evaluation = summary["evaluation"]
    if evaluation is None:
        print("no holdout evaluation (no ratings held out)")
    else:
        print(
            f"holdout: {evaluation['count']} ratings scored, {evaluation['cold_count']} cold "
            "(user or item unseen in training)"
        )
        for name in ("rmse", "mae", "rwse", "loss"):
            value = evaluation[name]
            print(f"  {name:5s} {value:.6g}" if value is not None else f"  {name:5s} n/a")
    recommendations = summary.get("recommendations")
    if recommendations:
        k = recommendations["k"]
        print(f"top-{k} recommendations written to {recommendations['path']} (users/, items/)")
        print_examples(recommendations["examples"]["users"], "user")
        print_examples(recommendations["examples"]["items"], "item")
