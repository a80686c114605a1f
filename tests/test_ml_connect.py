"""walsspark.ml through Spark Connect (as a Databricks serverless notebook) gives the
classic results, and pyspark.ml's Pipeline, CrossValidator and TrainValidationSplit work
with it there too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from job_runs import run_result_job
from ml_data import COLUMNS, SCHEMA, explicit_rows

from walsspark.ml import WALS


def test_ml_api_through_spark_connect(spark, tmp_path):
    job = Path(__file__).with_name("ml_connect_job.py")
    remote = run_result_job([str(job), str(tmp_path)], timeout=900)

    frame = spark.createDataFrame(explicit_rows(), SCHEMA)
    model = WALS(rank=3, maxIter=4, numUserBlocks=2, numItemBlocks=2, **COLUMNS).fit(frame)
    for name, table in (("users", model.userFactors), ("items", model.itemFactors)):
        local = {str(row["id"]): row["features"] for row in table.collect()}
        assert remote[name].keys() == local.keys()
        for key, features in local.items():
            np.testing.assert_allclose(remote[name][key], features, rtol=1e-5, atol=1e-6)
    assert np.isnan(remote["predictions"][1])
    local_top3 = {
        str(row["user_id"]): [r["item_id"] for r in row["recommendations"]]
        for row in model.copy({model.excludeSeen: True}).recommendForAllUsers(3).collect()
    }
    assert remote["top3"] == local_top3 == remote["loaded_top3"]
    assert list(remote["projected"]) == ["500"]
    assert remote["pipeline_same"] and remote["estimator_rank"] == 3
    assert remote["cv_metrics"][0] < remote["cv_metrics"][1] and remote["cv_best_reg"] == 0.1
    assert remote["tvs_metrics"][0] > remote["tvs_metrics"][1] and remote["tvs_best_reg"] == 0.05
