"""Ranking metrics of top-K lists against held-out relevant items (numpy only).

For a user with relevant set T (the held-out items) and recommended list R = r_1..r_K
(training items excluded), with hit_i = 1 when r_i is in T:

- ``precision@K`` = sum_i hit_i / K
- ``recall@K`` = sum_i hit_i / |T|
- ``ndcg@K`` = DCG / IDCG, DCG = sum_i hit_i / log2(i + 1), IDCG = sum_{i <= min(K, |T|)}
  1 / log2(i + 1) (binary relevance)
- ``map@K``: AP@K = sum_i hit_i * precision@i / min(K, |T|), averaged over users
- ``hit_rate@K`` = 1 if any hit_i, else 0

These are Spark MLlib's ``RankingMetrics`` definitions (precisionAt, recallAt, ndcgAt,
meanAveragePrecisionAt). Every metric is a mean over the users with at least one relevant
item; a list shorter than K (fewer candidates left) counts its missing places as misses.
"""

from __future__ import annotations

import numpy as np

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


def per_user_metrics(hits: np.ndarray, num_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Every ranking metric of every user.

    Parameters
    ----------
    hits : ndarray of bool, shape (n_users, K)
        ``hits[u, i]``: the (i+1)-th recommendation of user u is relevant (False past the
        end of a short list).
    num_relevant : ndarray of int, shape (n_users,)
        |T_u| >= 1.
    k : int
        The K of the metrics (``hits`` has K columns).

    Returns
    -------
    dict
        metric name -> (n_users,) float64.

    Examples
    --------
    >>> m = per_user_metrics(np.array([[False, True, True]]), np.array([4]), 3)
    >>> round(float(m["precision"][0]), 4), float(m["recall"][0]), float(m["hit_rate"][0])
    (0.6667, 0.5, 1.0)
    """
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2 or hits.shape[1] != k:
        raise ValueError(f"hits must have shape (n, {k}), got {hits.shape}")
    relevant = np.asarray(num_relevant, dtype=np.float64)
    if np.any(relevant < 1):
        raise ValueError("every user needs at least one relevant item")
    hit = hits.astype(np.float64)
    positions = np.arange(1, k + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(positions + 1.0)
    found = hit.sum(axis=1)
    ideal_places = np.minimum(relevant, k).astype(np.int64)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_places]
    precision_at_i = np.cumsum(hit, axis=1) / positions
    return {
        "precision": found / k,
        "recall": found / relevant,
        "ndcg": (hit @ discounts) / ideal,
        "map": np.sum(precision_at_i * hit, axis=1) / np.minimum(relevant, k),
        "hit_rate": (found > 0).astype(np.float64),
    }
