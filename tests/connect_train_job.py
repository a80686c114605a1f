"""Train and recommend through a local Spark Connect session; print the results as JSON.

Run as a subprocess by test_connect.py: a Connect server needs its own JVM, apart from
the classic session of the other tests.
"""

import json
import sys

from pyspark.sql import SparkSession

from walsspark.params import WALSParams
from walsspark.recommend import recommend
from walsspark.session import apply_runtime_settings
from walsspark.train import fit


def main() -> None:
    data = json.loads(sys.argv[1])
    spark = SparkSession.builder.remote("local[2]").getOrCreate()
    assert type(spark).__module__.startswith("pyspark.sql.connect"), type(spark)
    apply_runtime_settings(spark)
    ratings = spark.createDataFrame(data["ratings"], "user long, item string, rating double")
    trained = fit(spark, ratings, WALSParams(**data["params"]))
    result = {
        "users": {str(r["id"]): list(r["features"]) for r in trained.user_factors().collect()},
        "items": {r["id"]: list(r["features"]) for r in trained.item_factors().collect()},
        "losses": [record.loss for record in trained.history],
        "top3": {
            str(r["id"]): [x["id"] for x in r["recommendations"]]
            for r in recommend(
                spark, trained.user_factors(), trained.item_factors(), 3, trained.params.rank
            ).collect()
        },
    }
    print("RESULT " + json.dumps(result))
    spark.stop()


if __name__ == "__main__":
    main()
