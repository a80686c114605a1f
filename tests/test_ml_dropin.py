"""The drop-in check: Spark's ALS example (jobs/als_example.py) with WALS in place of ALS
runs unchanged and its test RMSE is within 0.5% of MLlib's at MLlib's objective, 20
iterations (benchmarks/bench_dropin.py measures the same on MovieLens).

In a process of its own: MLlib needs a checkpoint directory for 20 iterations (its lineage
overflows the stack without one), and one set on the tests' shared session would make every
later training test checkpoint reliably.
"""

from __future__ import annotations

import os
from pathlib import Path

from job_runs import run_result_job

JOBS = Path(__file__).resolve().parents[1] / "jobs"
RUN_BOTH = """
import json, sys
import pyarrow as pa
from als_example import run_example
from walsspark.session import get_or_create_session
from walsspark.synthetic import synthetic_ratings

spark = get_or_create_session(master="local[2]", app_name="dropin")
spark.sparkContext.setCheckpointDir(sys.argv[1])
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
results = {
    impl: run_example(spark, ratings, impl, max_iter=20, reg_param=0.1, seed=0)
    for impl in ("mllib", "wals")
}
results["users"] = ratings.select("userId").distinct().count()
print("RESULT " + json.dumps(results))
"""


def test_als_example_with_wals_matches_mllib_rmse(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(JOBS))
    checkpoints = str(tmp_path / "checkpoints")
    results = run_result_job(["-c", RUN_BOTH, checkpoints], timeout=900, env=env)
    mllib, wals = results["mllib"], results["wals"]
    # Swapping ALS for WALS must not make the example worse: at most 0.5% above MLlib's
    # RMSE. Not two-sided: one CI run saw WALS 0.66% *below* MLlib (0.7710 against 0.7761)
    # where other runs, same code, were within 0.5%, so the ratio moves between runs.
    assert wals["rmse"] <= mllib["rmse"] * 1.005, (wals["rmse"], mllib["rmse"])
    assert wals["user_recs"] == mllib["user_recs"] == results["users"]
    assert wals["user_subset"] == mllib["user_subset"] == 3
    assert wals["movie_subset"] == mllib["movie_subset"] == 3
