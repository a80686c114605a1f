"""The drop-in check: Spark's ALS example (jobs/als_example.py) with WALS in place of ALS
runs unchanged and its test RMSE is within 0.5% of MLlib's at MLlib's objective, 20
iterations (benchmarks/bench_dropin.py measures the same on MovieLens)."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))

from als_example import run_example  # noqa: E402

from walsspark.synthetic import synthetic_ratings  # noqa: E402


def test_als_example_with_wals_matches_mllib_rmse(spark, tmp_path):
    table = synthetic_ratings(num_users=800, num_items=400, mean_ratings_per_user=30, seed=5)
    ratings = spark.createDataFrame(
        pa.table(
            {
                "userId": table["user_id"].cast(pa.int32()),
                "movieId": table["item_id"].cast(pa.int32()),
                "rating": table["rating"].cast(pa.float32()),
            }
        )
    ).cache()
    # MLlib's lineage overflows the stack beyond ~15 iterations without a checkpoint dir.
    spark.sparkContext.setCheckpointDir(str(tmp_path / "checkpoints"))
    mllib = run_example(spark, ratings, "mllib", max_iter=20, reg_param=0.1, seed=0)
    wals = run_example(spark, ratings, "wals", max_iter=20, reg_param=0.1, seed=0)
    ratio = wals["rmse"] / mllib["rmse"]
    assert abs(ratio - 1) <= 0.005, (wals["rmse"], mllib["rmse"])
    users = ratings.select("userId").distinct().count()
    assert wals["user_recs"] == mllib["user_recs"] == users
    assert wals["user_subset"] == mllib["user_subset"] == 3
    assert wals["movie_subset"] == mllib["movie_subset"] == 3
