"""Ranking metrics on hand-computed cases: the numpy core and the Spark aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from walsspark.evaluate import ranking_metrics
from walsspark.ranking import per_user_metrics

LOG3, LOG4 = math.log2(3), math.log2(4)
# Three users, K = 3 (worked out by hand from the definitions in walsspark.ranking):
# A: list x y z, relevant {y, z, w, v}  -> hits 0 1 1
# B: list a (only one candidate left), relevant {a} -> hits 1 - -
# C: list p q r, relevant {s} -> no hit
EXPECTED = {
    "A": dict(
        precision=2 / 3,
        recall=2 / 4,
        ndcg=(1 / LOG3 + 1 / LOG4) / (1 + 1 / LOG3 + 1 / LOG4),
        map=(1 / 2 + 2 / 3) / 3,
        hit_rate=1.0,
    ),
    "B": dict(precision=1 / 3, recall=1.0, ndcg=1.0, map=1.0, hit_rate=1.0),
    "C": dict(precision=0.0, recall=0.0, ndcg=0.0, map=0.0, hit_rate=0.0),
}


def test_per_user_metrics_match_hand_computed_values():
    hits = np.array([[False, True, True], [True, False, False], [False, False, False]])
    got = per_user_metrics(hits, np.array([4, 1, 1]), 3)
    for row, user in enumerate("ABC"):
        for name, value in EXPECTED[user].items():
            assert got[name][row] == pytest.approx(value, abs=1e-12), (user, name)


def test_per_user_metrics_refuse_users_without_relevant_items():
    with pytest.raises(ValueError, match="relevant"):
        per_user_metrics(np.zeros((1, 2), dtype=bool), np.array([0]), 2)


def test_distributed_ranking_metrics_average_the_users(spark):
    lists = {"A": ["x", "y", "z"], "B": ["a"], "C": ["p", "q", "r"], "D": ["x", "b", "c"]}
    rows = [
        (user, [(item, 1.0 - 0.1 * i) for i, item in enumerate(items)])
        for user, items in lists.items()
    ]
    recommendations = spark.createDataFrame(
        rows, "id string, recommendations array<struct<id: string, score: float>>"
    )
    relevant = spark.createDataFrame(
        [("A", "y"), ("A", "z"), ("A", "w"), ("A", "v"), ("B", "a"), ("C", "s")],
        "user string, item string",
    )
    # D has a list but nothing relevant: not evaluated, and its list is not in the coverage.
    got = ranking_metrics(recommendations, relevant, 3, num_items=10)
    assert got["users"] == 3
    for name in EXPECTED["A"]:
        mean = sum(EXPECTED[u][name] for u in "ABC") / 3
        assert got[f"{name}@3"] == pytest.approx(mean, abs=1e-12), name
    assert got["coverage@3"] == pytest.approx(7 / 10)
