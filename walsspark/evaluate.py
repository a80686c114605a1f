"""Holdout evaluation of a trained model, computed on the executors.

Rating metrics are below; ranking metrics (:func:`ranking_metrics`) follow
:mod:`walsspark.ranking`.

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
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from walsspark.params import WALSParams
from walsspark.ranking import METRICS, per_user_metrics

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


_RANKING_SUMS_SCHEMA = "users long, " + ", ".join(f"{name} double" for name in METRICS)


def _ranking_sums_fn(k: int):
    """mapInArrow function: per-batch sums of every user's ranking metrics."""

    def sums(batches):
        totals = dict.fromkeys(METRICS, 0.0)
        users = 0
        for batch in batches:
            if batch.num_rows == 0:
                continue
            recommended = batch.column("recommended")
            relevant = batch.column("relevant")
            rec_lengths = pc.list_value_length(recommended).fill_null(0).to_numpy()
            rel_lengths = pc.list_value_length(relevant).fill_null(0).to_numpy()
            rec_flat = pc.list_flatten(recommended)
            rel_flat = pc.list_flatten(relevant)
            # Code every id of the batch once, then find the recommended (user, id) pairs
            # among the relevant ones.
            codes = pc.dictionary_encode(pa.concat_arrays([rec_flat, rel_flat])).indices
            codes = codes.to_numpy(zero_copy_only=False).astype(np.int64)
            rec_owner = np.repeat(np.arange(batch.num_rows), rec_lengths)
            rel_owner = np.repeat(np.arange(batch.num_rows), rel_lengths)
            rec_keys = (rec_owner << 32) | codes[: len(rec_flat)]
            rel_keys = (rel_owner << 32) | codes[len(rec_flat) :]
            is_hit = np.isin(rec_keys, rel_keys)
            position = np.arange(len(rec_flat)) - np.repeat(
                np.cumsum(rec_lengths) - rec_lengths, rec_lengths
            )
            keep = position < k
            hits = np.zeros((batch.num_rows, k), dtype=bool)
            hits[rec_owner[keep], position[keep]] = is_hit[keep]
            metrics = per_user_metrics(hits, rel_lengths, k)
            users += batch.num_rows
            for name in METRICS:
                totals[name] += float(np.sum(metrics[name]))
        yield pa.RecordBatch.from_pydict(
            {"users": [users], **{name: [value] for name, value in totals.items()}}
        )

    return sums


def ranking_metrics(
    recommendations: DataFrame, relevant: DataFrame, k: int, num_items: int
) -> dict:
    """Ranking metrics of top-K lists against relevant held-out pairs, on the executors.

    Parameters
    ----------
    recommendations : DataFrame
        ``id`` (user), ``recommendations`` (array of {id, score}, best first, training
        items excluded), as :mod:`walsspark.recommend` writes them.
    relevant : DataFrame
        ``user``, ``item``: the relevant held-out pairs whose user and item the model knows.
    k : int
    num_items : int
        Items in the model, for the catalog coverage.

    Returns
    -------
    dict
        ``users`` (evaluated: with at least one relevant pair), the mean of every metric of
        :mod:`walsspark.ranking` (keys ``precision@K`` ...), and ``coverage@K``: distinct
        recommended items over the evaluated users' lists / ``num_items``.
    """
    per_user = relevant.groupBy("user").agg(F.collect_list("item").alias("relevant"))
    joined = per_user.join(
        recommendations.select(
            F.col("id").alias("user"), F.col("recommendations.id").alias("recommended")
        ),
        "user",
    ).cache()
    totals = (
        joined.select("recommended", "relevant")
        .mapInArrow(_ranking_sums_fn(k), _RANKING_SUMS_SCHEMA)
        .agg(*[F.sum(c).alias(c) for c in ("users", *METRICS)])
        .collect()[0]
    )
    users = int(totals["users"] or 0)
    result: dict = {"users": users}
    for name in METRICS:
        result[f"{name}@{k}"] = float(totals[name]) / users if users else math.nan
    distinct = joined.select(F.explode(F.slice("recommended", 1, k))).distinct().count()
    result[f"coverage@{k}"] = distinct / num_items if num_items else math.nan
    joined.unpersist()
    return result
