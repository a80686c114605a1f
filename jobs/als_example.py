"""Spark's MLlib ALS example, with ``ALS`` replaced by ``WALS``: the drop-in check.

This is ``examples/src/main/python/ml/als_example.py`` from Apache Spark, kept line for
line where it can be: the ratings are read with the DataFrame API instead of an RDD (so it
also runs on Spark Connect), the data and the number of iterations are arguments, and
the one line that picks the estimator is::

    ALS = WALS  # from walsspark.ml import WALS

Run it both ways and compare the RMSE (``--impl mllib`` is the original)::

    python jobs/als_example.py --impl wals [--input ../shared/data/ml-100k/u.data]
    python jobs/als_example.py --impl mllib [--input ...]

Without ``--input`` it uses walsspark's embedded synthetic ratings. It prints one JSON
line: the RMSE on the 20% test split, the fit time, and the first recommendations.
"""

from __future__ import annotations

import argparse
import json
import time


def read_ratings(spark, path: str | None):
    """``userId``, ``movieId``, ``rating`` (as the example's sample_movielens_ratings)."""
    if path is None:
        from walsspark.commands.inputs import synthetic_frame

        frame = synthetic_frame(spark)
        return frame.selectExpr(
            "cast(user_id as int) userId", "cast(item_id as int) movieId", "rating"
        )
    from walsspark.ratings_read import read_ratings as read

    return read(spark, path).selectExpr(
        "cast(user as int) userId", "cast(item as int) movieId", "cast(rating as float) rating"
    )


def run_example(
    spark,
    ratings,
    impl: str,
    max_iter: int,
    reg_param: float,
    seed: int,
    model_seed: int | None = None,
) -> dict:
    """The example's body: split, fit, RMSE on the test split, the four recommend calls.

    ``seed`` seeds the split; ``model_seed``, when given, the estimator's ``seed`` (the
    example leaves it at each estimator's default).
    """
    from pyspark.ml.evaluation import RegressionEvaluator

    if impl == "mllib":
        from pyspark.ml.recommendation import ALS
    else:
        from walsspark.ml import WALS as ALS  # noqa: N814 - the one line that changes

    (training, test) = ratings.randomSplit([0.8, 0.2], seed=seed)

    # Build the recommendation model using ALS on the training data
    # Note we set cold start strategy to 'drop' to ensure we don't get NaN evaluation metrics
    als = ALS(
        maxIter=max_iter,
        regParam=reg_param,
        userCol="userId",
        itemCol="movieId",
        ratingCol="rating",
        coldStartStrategy="drop",
    )
    if model_seed is not None:
        als.setSeed(model_seed)
    start = time.perf_counter()
    model = als.fit(training)
    fit_seconds = time.perf_counter() - start

    # Evaluate the model by computing the RMSE on the test data
    predictions = model.transform(test)
    evaluator = RegressionEvaluator(
        metricName="rmse", labelCol="rating", predictionCol="prediction"
    )
    rmse = evaluator.evaluate(predictions)

    # Generate top 10 movie recommendations for each user
    userRecs = model.recommendForAllUsers(10)  # noqa: N806 - the example's names
    # Generate top 10 user recommendations for each movie
    movieRecs = model.recommendForAllItems(10)  # noqa: N806

    # Generate top 10 movie recommendations for a specified set of users
    users = ratings.select(als.getUserCol()).distinct().limit(3)
    userSubsetRecs = model.recommendForUserSubset(users, 10)  # noqa: N806
    # Generate top 10 user recommendations for a specified set of movies
    movies = ratings.select(als.getItemCol()).distinct().limit(3)
    movieSubSetRecs = model.recommendForItemSubset(movies, 10)  # noqa: N806
    return {
        "impl": impl,
        "rmse": rmse,
        "fit_seconds": round(fit_seconds, 2),
        "user_recs": userRecs.count(),
        "movie_recs": movieRecs.count(),
        "user_subset": userSubsetRecs.count(),
        "movie_subset": movieSubSetRecs.count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("wals", "mllib"), default="wals")
    parser.add_argument("--input", help="ratings (MovieLens u.data, ratings.dat, Parquet...)")
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--reg-param", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0, help="of the 80/20 split")
    args = parser.parse_args(argv)

    from walsspark.session import get_or_create_session

    spark = get_or_create_session(app_name="als-example")
    ratings = read_ratings(spark, args.input).cache()
    result = run_example(spark, ratings, args.impl, args.max_iter, args.reg_param, args.seed)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
