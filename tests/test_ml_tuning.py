"""WALS in pyspark.ml's machinery: Pipeline, CrossValidator, TrainValidationSplit (classic).

Each search has a known answer: a grid where one setting is absurd (a regularization that
shrinks every factor to zero) must lose to a sensible one.
"""

from __future__ import annotations

import numpy as np
import pytest
from ml_data import COLUMNS, SCHEMA, explicit_rows, implicit_rows
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import RankingEvaluator, RegressionEvaluator
from pyspark.ml.feature import SQLTransformer
from pyspark.ml.tuning import (
    CrossValidator,
    CrossValidatorModel,
    ParamGridBuilder,
    TrainValidationSplit,
)

from walsspark.ml import WALS, WALSModel


def test_pipeline_fit_save_load(spark, tmp_path):
    frame = spark.createDataFrame(explicit_rows(), SCHEMA)
    keep = SQLTransformer(
        statement="SELECT user_id, item_id, rating FROM __THIS__ WHERE rating > 1"
    )
    wals = WALS(rank=2, maxIter=3, **COLUMNS)
    pipeline = Pipeline(stages=[keep, wals])
    fitted = pipeline.fit(frame)
    assert isinstance(fitted.stages[-1], WALSModel)
    path = str(tmp_path / "pipeline-model")
    fitted.write().overwrite().save(path)
    fitted.write().overwrite().save(path)
    loaded = PipelineModel.load(path)
    assert isinstance(loaded.stages[-1], WALSModel)
    before = {(r.user_id, r.item_id): r.prediction for r in fitted.transform(frame).collect()}
    after = {(r.user_id, r.item_id): r.prediction for r in loaded.transform(frame).collect()}
    assert before == after and len(before) == frame.filter("rating > 1").count()
    pipeline.write().overwrite().save(str(tmp_path / "pipeline"))
    assert Pipeline.load(str(tmp_path / "pipeline")).getStages()[-1].getRank() == 2


def test_cross_validator_with_regression_evaluator(spark, tmp_path):
    # Enough ratings per user that half of them (a fold) still fit rank 3.
    frame = spark.createDataFrame(explicit_rows(users=100, items=60, per_user=20), SCHEMA)
    wals = WALS(rank=3, maxIter=3, coldStartStrategy="drop", **COLUMNS)
    grid = ParamGridBuilder().addGrid(wals.regParam, [0.1, 50.0]).build()
    evaluator = RegressionEvaluator(metricName="rmse", labelCol="rating")
    search = CrossValidator(
        estimator=wals, estimatorParamMaps=grid, evaluator=evaluator, numFolds=2, seed=1
    )
    fitted = search.fit(frame)
    assert fitted.avgMetrics[0] < fitted.avgMetrics[1]  # 50 shrinks every factor to ~0
    # Fits in parallel threads share no caches (each fit's plan is its own): same numbers.
    parallel = search.copy().setParallelism(2).fit(frame)
    assert parallel.avgMetrics == pytest.approx(fitted.avgMetrics, rel=1e-9)
    best = fitted.bestModel
    assert isinstance(best, WALSModel) and best.trainingParams.regularization == 0.1
    rmse = evaluator.evaluate(best.transform(frame))
    assert np.isfinite(rmse) and rmse < fitted.avgMetrics[1]
    path = str(tmp_path / "cv")
    fitted.write().overwrite().save(path)
    loaded = CrossValidatorModel.load(path)
    assert loaded.avgMetrics == pytest.approx(fitted.avgMetrics)
    assert evaluator.evaluate(loaded.bestModel.transform(frame)) == pytest.approx(rmse)


def test_train_validation_split_with_ranking_evaluator(spark):
    frame = spark.createDataFrame(implicit_rows(), SCHEMA)
    # rankingK: transform gives RankingEvaluator its per-user arrays, training items excluded.
    wals = WALS(rank=2, maxIter=4, implicitPrefs=True, alpha=2.0, rankingK=5, **COLUMNS)
    grid = ParamGridBuilder().addGrid(wals.regParam, [0.05, 1e4]).build()
    evaluator = RankingEvaluator(metricName="ndcgAtK", k=5)
    search = TrainValidationSplit(
        estimator=wals, estimatorParamMaps=grid, evaluator=evaluator, trainRatio=0.75, seed=2
    )
    fitted = search.fit(frame)
    assert fitted.validationMetrics[0] > fitted.validationMetrics[1]
    assert fitted.bestModel.trainingParams.regularization == 0.05
