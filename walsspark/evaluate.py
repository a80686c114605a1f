"""Holdout evaluation of a trained model, computed on the executors.

Metrics over held-out ratings (user u, item i, rating r) whose user and item both have
factors (the others are *cold*: counted and reported, not scored, like MLlib's
``coldStartStrategy="drop"``):

- ``rmse`` = sqrt(mean((r - u.v)^2)), ``mae`` = mean(|r - u.v|);
- ``loss`` = sum W (r - u.v)^2 with W = w0 + R C c, the observed part of the training
  objective restricted to the held-out entries (r is the target: 0/1 for implicit
  feedback; R C c the per-entry weight of :mod:`walsspark.weighting`);
- ``rwse`` (root weighted squared error, as the TF estimator reported it)
  = sqrt(loss / sum W).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from walsspark.params import WALSParams

_SUMS_SCHEMA = "count long, squared double, absolute double, weighted double, weight double"


def _partial_sums_fn(rank: int, w0: float, scale: float):
    def sums(batches):
        count, squared, absolute, weighted, total_weight = 0, 0.0, 0.0, 0.0, 0.0
        for batch in batches:
            if batch.num_rows == 0:
                continue
            user = _matrix(batch.column("user_features"), rank)
            item = _matrix(batch.column("item_features"), rank)
            rating = batch.column("rating").to_numpy(zero_copy_only=False).astype(np.float64)
            error = rating - np.einsum("ij,ij->i", user, item)
            weight = np.full(batch.num_rows, w0 + scale)
            if "confidence" in batch.schema.names:
                confidence = batch.column("confidence").to_numpy(zero_copy_only=False)
                weight = w0 + scale * confidence.astype(np.float64)
            count += batch.num_rows
            squared += float(np.sum(error**2))
            absolute += float(np.sum(np.abs(error)))
            weighted += float(np.sum(weight * error**2))
            total_weight += float(np.sum(weight))
        yield pa.RecordBatch.from_pydict(
            {
                "count": [count],
                "squared": [squared],
                "absolute": [absolute],
                "weighted": [weighted],
                "weight": [total_weight],
            }
        )

    return sums


def _matrix(features: pa.Array, rank: int) -> np.ndarray:
    values = features.flatten().to_numpy(zero_copy_only=False)
    return values.astype(np.float64).reshape(-1, rank)


def holdout_metrics(
    user_factors: DataFrame, item_factors: DataFrame, holdout: DataFrame, params: WALSParams
) -> dict:
    """Score held-out ratings with the factors.

    Parameters
    ----------
    user_factors, item_factors : DataFrame
        ``id``, ``features`` (array<float>).
    holdout : DataFrame
        ``user``, ``item``, ``rating`` (the target) and, with per-entry weights,
        ``confidence`` (:func:`walsspark.weighting.entry_weights`).
    params : WALSParams
        For the observed weight W = w0 + R C c.

    Returns
    -------
    dict
        ``count``, ``cold_count``, ``rmse``, ``mae``, ``loss``, ``rwse`` (NaN when nothing
        could be scored).
    """
    weights = params.user_weights()
    scale = weights.row_weight * weights.col_weight
    scored = holdout.join(
        user_factors.select(F.col("id").alias("user"), F.col("features").alias("user_features")),
        "user",
    ).join(
        item_factors.select(F.col("id").alias("item"), F.col("features").alias("item_features")),
        "item",
    )
    totals = (
        scored.select(
            "rating",
            "user_features",
            "item_features",
            *(["confidence"] if "confidence" in holdout.columns else []),
        )
        .mapInArrow(_partial_sums_fn(params.rank, weights.unobserved_weight, scale), _SUMS_SCHEMA)
        .agg(
            *[
                F.sum(name).alias(name)
                for name in ("count", "squared", "absolute", "weighted", "weight")
            ]
        )
        .collect()[0]
    )
    total_rows = holdout.count()
    count = int(totals["count"] or 0)
    metrics = {"count": count, "cold_count": total_rows - count}
    if count == 0:
        metrics.update(rmse=math.nan, mae=math.nan, loss=math.nan, rwse=math.nan)
        return metrics
    metrics["rmse"] = math.sqrt(totals["squared"] / count)
    metrics["mae"] = totals["absolute"] / count
    metrics["loss"] = float(totals["weighted"])
    metrics["rwse"] = (
        math.sqrt(totals["weighted"] / totals["weight"]) if totals["weight"] else math.nan
    )
    return metrics
