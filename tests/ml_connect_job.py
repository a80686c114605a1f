"""The pyspark.ml API through a local Spark Connect session; prints the results as JSON.

Run as a subprocess by test_ml_connect.py (a Connect server needs its own JVM). Covers what
a Databricks serverless notebook does: fit, transform, recommend, fold-in, save with
overwrite and load, a Pipeline, CrossValidator with RegressionEvaluator and
TrainValidationSplit with RankingEvaluator.
"""

import json
import sys

from ml_data import COLUMNS, SCHEMA, explicit_rows, implicit_rows
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import RankingEvaluator, RegressionEvaluator
from pyspark.ml.feature import SQLTransformer
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder, TrainValidationSplit
from pyspark.sql import SparkSession

from walsspark.ml import WALS, WALSModel
from walsspark.session import apply_runtime_settings


def factors(frame):
    return {str(row["id"]): list(row["features"]) for row in frame.collect()}


def main() -> None:
    root = sys.argv[1]
    spark = SparkSession.builder.remote("local[2]").getOrCreate()
    assert type(spark).__module__.startswith("pyspark.sql.connect"), type(spark)
    apply_runtime_settings(spark)
    result = {}

    frame = spark.createDataFrame(explicit_rows(), SCHEMA)
    wals = WALS(rank=3, maxIter=4, numUserBlocks=2, numItemBlocks=2, **COLUMNS)
    model = wals.fit(frame)
    result["users"], result["items"] = factors(model.userFactors), factors(model.itemFactors)
    test = spark.createDataFrame([(0, 1, 3.0), (999, 1, 2.0)], SCHEMA)
    result["predictions"] = [row["prediction"] for row in model.transform(test).collect()]
    excluding = model.copy({model.excludeSeen: True})
    result["top3"] = {
        str(row["user_id"]): [r["item_id"] for r in row["recommendations"]]
        for row in excluding.recommendForAllUsers(3).collect()
    }
    path = f"{root}/model"
    excluding.write().overwrite().save(path)
    excluding.write().overwrite().save(path)  # MLWriter.overwrite() would need the JVM
    loaded = WALSModel.load(path)
    result["loaded_top3"] = {
        str(row["user_id"]): [r["item_id"] for r in row["recommendations"]]
        for row in loaded.recommendForAllUsers(3).collect()
    }
    new = spark.createDataFrame([(500, 1, 5.0), (500, 2, 1.0)], SCHEMA)
    result["projected"] = factors(loaded.projectUsers(new))

    keep = SQLTransformer(statement="SELECT * FROM __THIS__ WHERE rating > 1")
    pipeline_model = Pipeline(stages=[keep, wals]).fit(frame)
    pipeline_model.write().overwrite().save(f"{root}/pipeline")
    pipeline_model.write().overwrite().save(f"{root}/pipeline")
    reloaded = PipelineModel.load(f"{root}/pipeline")
    result["pipeline_same"] = sorted(
        (r.user_id, r.item_id, r.prediction) for r in pipeline_model.transform(frame).collect()
    ) == sorted((r.user_id, r.item_id, r.prediction) for r in reloaded.transform(frame).collect())
    wals.write().overwrite().save(f"{root}/estimator")
    wals.write().overwrite().save(f"{root}/estimator")
    result["estimator_rank"] = WALS.load(f"{root}/estimator").getRank()

    cv_frame = spark.createDataFrame(explicit_rows(users=100, items=60, per_user=20), SCHEMA)
    cv_wals = WALS(rank=3, maxIter=3, coldStartStrategy="drop", **COLUMNS)
    grid = ParamGridBuilder().addGrid(cv_wals.regParam, [0.1, 50.0]).build()
    cv = CrossValidator(
        estimator=cv_wals,
        estimatorParamMaps=grid,
        evaluator=RegressionEvaluator(metricName="rmse", labelCol="rating"),
        numFolds=2,
        seed=1,
    ).fit(cv_frame)
    result["cv_metrics"] = [float(m) for m in cv.avgMetrics]
    result["cv_best_reg"] = cv.bestModel.trainingParams.regularization

    ranked = WALS(rank=2, maxIter=4, implicitPrefs=True, alpha=2.0, rankingK=5, **COLUMNS)
    grid = ParamGridBuilder().addGrid(ranked.regParam, [0.05, 1e4]).build()
    tvs = TrainValidationSplit(
        estimator=ranked,
        estimatorParamMaps=grid,
        evaluator=RankingEvaluator(metricName="ndcgAtK", k=5),
        trainRatio=0.75,
        seed=2,
    ).fit(spark.createDataFrame(implicit_rows(), SCHEMA))
    result["tvs_metrics"] = [float(m) for m in tvs.validationMetrics]
    result["tvs_best_reg"] = tvs.bestModel.trainingParams.regularization
    print("RESULT " + json.dumps(result))
    spark.stop()


if __name__ == "__main__":
    main()
