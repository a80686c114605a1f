"""Training and recommending through Spark Connect (as on Databricks serverless) give the
classic results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from job_runs import run_result_job

from walsspark.params import WALSParams
from walsspark.recommend import recommend
from walsspark.train import fit


def test_training_through_spark_connect_matches_classic(spark):
    rng = np.random.default_rng(11)
    ratings = [
        (int(u), f"i{j}", float(rng.integers(1, 6)))
        for u in range(40)
        for j in rng.choice(30, size=6, replace=False)
    ]
    params = dict(rank=3, sweeps=3, num_user_blocks=2, num_item_blocks=2, regularization=0.2)
    job = Path(__file__).with_name("connect_train_job.py")
    remote = run_result_job([str(job), json.dumps({"ratings": ratings, "params": params})])

    frame = spark.createDataFrame(ratings, "user long, item string, rating double")
    trained = fit(spark, frame, WALSParams(**params))
    local_users = {str(r["id"]): r["features"] for r in trained.user_factors().collect()}
    local_items = {r["id"]: r["features"] for r in trained.item_factors().collect()}
    assert remote["users"].keys() == local_users.keys()
    assert remote["items"].keys() == local_items.keys()
    for key, features in local_users.items():
        np.testing.assert_allclose(remote["users"][key], features, rtol=1e-5, atol=1e-6)
    for key, features in local_items.items():
        np.testing.assert_allclose(remote["items"][key], features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(remote["losses"], [r.loss for r in trained.history], rtol=1e-6)
    local_top3 = {
        str(r["id"]): [x["id"] for x in r["recommendations"]]
        for r in recommend(
            spark, trained.user_factors(), trained.item_factors(), 3, params["rank"]
        ).collect()
    }
    assert remote["top3"] == local_top3
