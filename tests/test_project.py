"""Fold-in of new rows against trained factors equals the training row update (oracle)."""

from __future__ import annotations

import numpy as np
import oracle
import pytest

from walsspark.project import project
from walsspark.solver import ObjectiveWeights


@pytest.mark.parametrize(
    "max_fixed_bytes, num_blocks",
    # One fixed block shipped whole; then fixed blocks of 2 factor rows each, so every block
    # of new rows gets its factors routed from several fixed blocks.
    [(1 << 28, None), (2 * 3 * 4, 3)],
)
def test_projected_rows_equal_the_oracle_row_update(spark, max_fixed_bytes, num_blocks):
    rng = np.random.default_rng(8)
    rank, m = 3, 12
    item_ids = [f"item{j}" for j in range(m)]
    items = rng.standard_normal((m, rank)).astype(np.float32)
    fixed = spark.createDataFrame(
        [(i, [float(x) for x in f]) for i, f in zip(item_ids, items, strict=True)],
        "id string, features array<float>",
    )
    mask = rng.random((7, m)) < 0.4
    mask[0, :2] = True
    rows, cols = np.nonzero(mask)
    values = rng.integers(1, 6, len(rows)).astype(np.float64)
    new = [
        (500 + int(r), item_ids[c], float(v)) for r, c, v in zip(rows, cols, values, strict=True)
    ]
    new.append((900, "never-trained-item", 5.0))  # only unknown ids: zero factors
    frame = spark.createDataFrame(new, "row long, other string, rating double")
    weights = ObjectiveWeights(0.1, 0.3, 1.0, 1.0, 1.0)

    projected = project(frame, fixed, rank, weights, num_blocks, max_fixed_bytes)
    result = {r["id"]: r for r in projected.collect()}
    assert len(result) == 8

    targets, w, observed = oracle.dense_problem(rows, cols, values, 7, m, 0.1)
    expected = oracle.row_update(targets, w, observed, items.astype(np.float64), 0.3, 1.0)
    for r in range(7):
        if observed[r].any():
            np.testing.assert_allclose(
                result[500 + r]["features"], expected[r], rtol=1e-4, atol=1e-5
            )
            assert result[500 + r]["rated"] == observed[r].sum()
    assert result[900]["features"] == [0.0] * rank and result[900]["rated"] == 0


def test_implicit_fold_in_uses_targets_and_confidences(spark):
    """mllib-implicit settings: target 1, W = 1 + alpha r on the rated entries."""
    rng = np.random.default_rng(9)
    rank, m, alpha = 3, 10, 2.0
    items = rng.standard_normal((m, rank)).astype(np.float32)
    fixed = spark.createDataFrame(
        [(j, [float(x) for x in f]) for j, f in enumerate(items)], "id long, features array<float>"
    )
    mask = rng.random((5, m)) < 0.5
    mask[:, 0] = True
    rows, cols = np.nonzero(mask)
    values = rng.integers(1, 6, len(rows)).astype(np.float64)
    frame = spark.createDataFrame(
        [
            (int(r), int(c), 1.0, alpha * float(v))
            for r, c, v in zip(rows, cols, values, strict=True)
        ],
        "row long, other long, rating double, confidence double",
    )
    result = {
        r["id"]: r["features"]
        for r in project(frame, fixed, rank, ObjectiveWeights(1.0, 0.1, 1.0)).collect()
    }

    targets = np.zeros((5, m))
    targets[rows, cols] = 1.0
    w = np.ones((5, m))
    w[rows, cols] += alpha * values
    expected = oracle.row_update(targets, w, mask, items.astype(np.float64), 0.1, 1.0)
    for r in range(5):
        np.testing.assert_allclose(result[r], expected[r], rtol=1e-4, atol=1e-5)
