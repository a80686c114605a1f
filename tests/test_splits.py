"""The time split's cut: exact, in bounded memory, the same as Spark's exact quantile."""

from __future__ import annotations

import math

import numpy as np
import pytest

from walsspark.splits import exact_quantile, split_ratings


def timestamps_frame(spark, values):
    return spark.createDataFrame(
        [(int(v),) if v is not None else (None,) for v in values], "t long"
    )


@pytest.mark.parametrize("quantile", [0.0, 0.1, 0.5, 0.8, 0.9, 0.999, 1.0])
def test_exact_quantile_is_the_rank_ceil_q_n_value(spark, quantile):
    rng = np.random.default_rng(3)
    # Many ties (a few hundred distinct values) and a null: what real timestamps do.
    values = rng.integers(1_000, 1_300, size=5_000).tolist() + [None]
    frame = timestamps_frame(spark, values).repartition(3)
    present = np.sort(np.array([v for v in values if v is not None]))
    rank = min(len(present), max(1, math.ceil(quantile * len(present))))
    expected = float(present[rank - 1])
    # A coarse sketch makes the bracket wide: the exact search does the work.
    assert exact_quantile(frame, "t", quantile, error=0.01) == expected
    assert exact_quantile(frame, "t", quantile) == expected
    assert frame.approxQuantile("t", [quantile], 0.0) == [expected]


def test_exact_quantile_of_no_values(spark):
    assert exact_quantile(timestamps_frame(spark, [None, None]), "t", 0.5) is None


def test_time_split_holds_out_what_follows_the_cut(spark):
    rng = np.random.default_rng(4)
    rows = [(int(u), int(i), 3.0, int(t)) for u, i, t in rng.integers(0, 50_000, size=(3_000, 3))]
    ratings = spark.createDataFrame(rows, "user long, item long, rating double, timestamp long")
    train, test = split_ratings(ratings, "time", 0.2, 1, 0)
    times = np.sort([r[3] for r in rows])
    cut = times[math.ceil(0.8 * len(times)) - 1]
    assert sorted(r["timestamp"] for r in test.collect()) == sorted(t for t in times if t > cut)
    assert train.count() + test.count() == len(rows)
