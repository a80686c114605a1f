"""Small rating sets with a planted rank-2 structure for the pyspark.ml tests."""

from __future__ import annotations

import numpy as np


def implicit_rows(seed: int = 7, users: int = 80, items: int = 50, per_user: int = 10):
    """Interactions whose choice of items has a planted rank-2 taste (ranking has signal)."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(users, 2)), rng.normal(size=(items, 2))
    rows = []
    for user in range(users):
        taste = np.exp(2.5 * (v @ u[user]))
        chosen = rng.choice(items, size=per_user, replace=False, p=taste / taste.sum())
        rows += [(user, int(item), float(rng.integers(1, 4))) for item in chosen]
    return rows


def explicit_rows(seed: int = 3, users: int = 60, items: int = 40, per_user: int = 8):
    """Star ratings (1-5) of uniformly chosen items: 3 + the planted taste, rounded."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(users, 2)), rng.normal(size=(items, 2))
    rows = []
    for user in range(users):
        for item in rng.choice(items, size=per_user, replace=False):
            rows.append((user, int(item), float(np.clip(np.rint(3 + u[user] @ v[item]), 1, 5))))
    return rows


SCHEMA = "user_id int, item_id int, rating double"
COLUMNS = dict(userCol="user_id", itemCol="item_id")
