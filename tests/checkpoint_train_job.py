"""Train in a session started with spark.checkpoint.dir; print the losses as JSON.

Run as a subprocess by test_train.py: the checkpoint directory is fixed when the
SparkContext starts, so it needs a session of its own.
"""

import json
import os
import sys

from pyspark.sql import SparkSession

from walsspark.params import WALSParams
from walsspark.session import apply_runtime_settings
from walsspark.train import fit


def main() -> None:
    data = json.loads(sys.argv[1])
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.checkpoint.dir", data["dir"])
        .getOrCreate()
    )
    apply_runtime_settings(spark)
    ratings = spark.createDataFrame(data["ratings"], "user long, item string, rating double")
    trained = fit(spark, ratings, WALSParams(**data["params"]))
    files = sum(len(names) for _, _, names in os.walk(data["dir"]))
    print("RESULT " + json.dumps({"losses": [r.loss for r in trained.history], "files": files}))
    spark.stop()


if __name__ == "__main__":
    main()
