"""`walsspark train`: read, validate, train, evaluate, save (and recommend)."""

from __future__ import annotations

import logging
from typing import Any

from walsspark.commands.inputs import check_apart, check_exists, print_examples, read_input
from walsspark.errors import InputError
from walsspark.options import SYNTHETIC_INPUT
from walsspark.params import WALSParams
from walsspark.session import SparkSetup
from walsspark.sweep_checkpoints import SweepCheckpoints

log = logging.getLogger("walsspark")


def params_from_options(options: dict[str, Any]) -> WALSParams:
    return WALSParams.from_dict(options).validate()


def run_train(options: dict[str, Any], setup: SparkSetup) -> dict[str, Any]:
    """Check the paths, read the input, train (:func:`walsspark.training.train_model`),
    save the model (and the recommendation tables); return a summary."""
    from walsspark.model import save_model
    from walsspark.training import train_model
    from walsspark.weighting import weight_columns

    params = params_from_options(options)
    recommendations_path = None
    if options["recommend_k"] is not None:
        k = options["recommend_k"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"recommend_k must be an integer >= 1, got {k!r}")
        recommendations_path = options["recommendations"] or (
            f"{options['output'].rstrip('/')}-recommendations"
        )
    checkpoint_path = options["checkpoint_dir"]
    if options["resume"] and not checkpoint_path:
        raise InputError("--resume needs --checkpoint-dir (the directory to resume from)")

    def check_paths(storage) -> None:
        check_exists(storage, options["input"], "input")
        check_apart(storage, options["output"], input=options["input"])
        storage.check_output(options["output"], options["overwrite"])
        if recommendations_path is not None:
            check_apart(
                storage, recommendations_path, input=options["input"], model=options["output"]
            )
            storage.check_output(recommendations_path, options["overwrite"])
        if checkpoint_path:
            SweepCheckpoints(
                storage, checkpoint_path, options["resume"], options["overwrite"]
            ).check_unused()
            check_apart(
                storage,
                checkpoint_path,
                input=options["input"],
                model=options["output"],
                recommendations=recommendations_path,
            )

    spark, storage = setup.start_checked(check_paths)
    ratings = read_input(spark, options, extra_cols=weight_columns(params), storage=storage)
    source = {
        # Where the ratings were, as the run resolved it (an absolute path or a URI),
        # so that a later run elsewhere finds the same data.
        "input": options["input"]
        if options["input"] == SYNTHETIC_INPUT
        else storage.describe(options["input"]),
        "format": options["format"],
        **{name: options[name] for name in ("user_col", "item_col", "rating_col")},
        "timestamp_col": options["timestamp_col"],
        # How csv or tsv text was read: recommend and evaluate read their inputs the same way.
        "id_type": options["id_type"],
        "header": options["header"],
    }
    checkpoints = None
    if checkpoint_path:
        checkpoints = SweepCheckpoints(
            storage, checkpoint_path, options["resume"], options["overwrite"]
        )
    result = train_model(spark, ratings, params, source, checkpoints=checkpoints)
    metadata = result.metadata
    save_model(
        options["output"],
        result.user_factors(),
        result.item_factors(),
        metadata,
        options["overwrite"],
        factor_blocks=result.factor_blocks,
        storage=storage,
    )
    log.info("model written to %s", storage.describe(options["output"]))
    summary = {"output": storage.describe(options["output"]), **metadata}
    if recommendations_path is not None:
        summary["recommendations"] = write_recommendation_tables(
            spark,
            storage,
            result.factor_blocks,
            metadata["data"],
            options["recommend_k"],
            params.rank,
            recommendations_path,
            options["overwrite"],
        )
    result.release()
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
