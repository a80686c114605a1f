"""Predictions and top-K lists in MLlib ALS's shapes, from walsspark's factors and blocks.

- :func:`predict`: a rating prediction per row (``transform``), the dot product computed by
  Spark SQL's array functions, so nothing leaves the JVM and Spark Connect needs nothing
  more than the DataFrame API;
- :func:`as_mllib_lists`: ``id, recommendations<id, score>`` (:mod:`walsspark.recommend`)
  as MLlib's ``<userCol>, recommendations<<itemCol>, rating>``;
- :func:`ranking_rows`: per-user ``prediction`` and ``label`` arrays for
  ``RankingEvaluator``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from walsspark.errors import InputError
from walsspark.ratings_read import column


def require_column(dataset: DataFrame, name: str) -> None:
    """Raise :class:`InputError` naming ``name`` and the columns ``dataset`` has instead."""
    if name not in dataset.columns:
        raise InputError(
            f"missing column {name} in the DataFrame; columns present: "
            f"{', '.join(dataset.columns) or '(none)'}"
        )


def dot(left: Column, right: Column) -> Column:
    """The dot product of two array<float> columns (null when either is null), as float."""
    products = F.zip_with(left, right, lambda a, b: a.cast("double") * b.cast("double"))
    return F.aggregate(products, F.lit(0.0), lambda total, x: total + x).cast("float")


def predict(
    dataset: DataFrame,
    user_factors: DataFrame,
    item_factors: DataFrame,
    user_col: str,
    item_col: str,
    prediction_col: str,
    cold_start: str,
) -> DataFrame:
    """``dataset`` with ``prediction_col``: the user's and the item's factors' dot product.

    Rows whose user or item the model lacks get NaN (``cold_start="nan"``) or are dropped
    (``"drop"``), as MLlib's ``coldStartStrategy``. Ids are matched as the model's types:
    a string id that is not a number matches no integer id.
    """
    for name in (user_col, item_col):
        require_column(dataset, name)
    user_type = user_factors.schema["id"].dataType.simpleString()
    item_type = item_factors.schema["id"].dataType.simpleString()
    users = user_factors.select(
        F.col("id").alias("__wals_user"), F.col("features").alias("__wals_user_features")
    )
    items = item_factors.select(
        F.col("id").alias("__wals_item"), F.col("features").alias("__wals_item_features")
    )
    keyed = dataset.withColumn("__wals_user_key", column(user_col).try_cast(user_type))
    keyed = keyed.withColumn("__wals_item_key", column(item_col).try_cast(item_type))
    how = "inner" if cold_start == "drop" else "left"
    joined = keyed.join(users, F.col("__wals_user_key") == F.col("__wals_user"), how).join(
        items, F.col("__wals_item_key") == F.col("__wals_item"), how
    )
    score = dot(F.col("__wals_user_features"), F.col("__wals_item_features"))
    prediction = F.coalesce(score, F.lit(float("nan")).cast("float"))
    return joined.select(
        *[column(name) for name in dataset.columns], prediction.alias(prediction_col)
    )


def as_mllib_lists(recommendations: DataFrame, query_col: str, candidate_col: str) -> DataFrame:
    """MLlib's layout of top-K lists: ``<query_col>``, ``recommendations`` array of
    ``struct<<candidate_col>, rating: float>``."""
    return recommendations.select(
        F.col("id").alias(query_col),
        F.transform(
            "recommendations",
            lambda r: F.struct(r["id"].alias(candidate_col), r["score"].alias("rating")),
        ).alias("recommendations"),
    )


def ranking_rows(
    dataset: DataFrame,
    recommendations: DataFrame,
    user_col: str,
    item_col: str,
    prediction_col: str,
    cold_start: str,
) -> DataFrame:
    """One row per user of ``dataset``: ``prediction`` (the recommended items, best first)
    and ``label`` (the user's items in ``dataset``), both array<double>.

    ``recommendations`` are the users' lists (``id``, ``recommendations``). Users the model
    lacks get an empty prediction (``cold_start="nan"``) or are dropped (``"drop"``).
    """
    # Users keyed as the model's ids (as the lists were chosen): a string "7" finds user 7.
    user_type = recommendations.schema["id"].dataType.simpleString()
    key = column(user_col).try_cast(user_type)
    labels = dataset.groupBy(key.alias("__wals_user")).agg(
        F.collect_list(column(item_col).cast("double")).alias("label")
    )
    lists = recommendations.select(
        F.col("id").alias("__wals_listed"),
        F.transform("recommendations", lambda r: r["id"].cast("double")).alias("__wals_top"),
    )
    how = "inner" if cold_start == "drop" else "left"
    joined = labels.join(lists, F.col("__wals_user") == F.col("__wals_listed"), how)
    empty = F.array().cast("array<double>")
    return joined.select(
        F.col("__wals_user").alias(user_col),
        F.coalesce(F.col("__wals_top"), empty).alias(prediction_col),
        "label",
    )
