"""Inputs shared by the subcommands: ratings, model paths, printed examples."""

from __future__ import annotations

import os
from typing import Any

from walsspark.errors import InputError
from walsspark.options import SYNTHETIC_INPUT


def read_input(spark, options: dict[str, Any], extra_cols: tuple[str, ...] = ()):
    from walsspark.ratings_io import read_ratings

    if options["input"] == SYNTHETIC_INPUT:
        if extra_cols:
            raise InputError(
                f"weight columns ({', '.join(extra_cols)}) need an input file; the "
                f"'{SYNTHETIC_INPUT}' data has none"
            )
        from walsspark.synthetic import DEFAULT_SIZE, synthetic_ratings

        table = synthetic_ratings(**DEFAULT_SIZE)
        frame = spark.createDataFrame(table.to_pandas())
        return frame.selectExpr(
            "user_id as user",
            "item_id as item",
            "cast(rating as double) as rating",
            "timestamp",
        )
    return read_ratings(
        spark,
        options["input"],
        fmt=options["format"],
        user_col=options["user_col"],
        item_col=options["item_col"],
        rating_col=options["rating_col"],
        timestamp_col=options["timestamp_col"],
        extra_cols=extra_cols,
    )


def check_model_path(model: str) -> None:
    """Stop early, before Spark starts, when a local model path is not a model."""
    from walsspark.model import METADATA_FILE, is_local_path, local_path

    if is_local_path(model):
        if not os.path.isdir(local_path(model)):
            raise InputError(f"model directory not found: {model}")
        if not os.path.isfile(os.path.join(local_path(model), METADATA_FILE)):
            raise InputError(f"not a walsspark model (no {METADATA_FILE}): {model}")


def print_examples(rows, what: str) -> None:
    for row in rows:
        best = ", ".join(f"{r['id']} ({r['score']:.2f})" for r in row["recommendations"][:5])
        print(f"  {what} {row['id']}: {best}")


def read_like_training(spark, model, path: str, fmt: str | None, user_col, item_col):
    """Ratings read like the model's training input (its column names unless given), their
    id types checked against the model's."""
    data = model.metadata["data"]
    options = {
        "input": path,
        "format": fmt or "auto",
        "user_col": user_col or data["user_col"],
        "item_col": item_col or data["item_col"],
        "rating_col": data["rating_col"],
        "timestamp_col": None,
    }
    ratings = read_input(spark, options)
    check_id_types(ratings, data, path)
    return ratings


def check_id_types(ratings, data: dict, source: str) -> None:
    """Raise when the ids of ``ratings`` are not of the model's types."""
    for column, expected in (("user", data["user_id_type"]), ("item", data["item_id_type"])):
        actual = ratings.schema[column].dataType.simpleString()
        if actual != expected:
            raise InputError(
                f"{column} ids in {source} are {actual} but the model's are {expected}"
            )
