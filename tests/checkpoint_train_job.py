"""Train in a session started with spark.checkpoint.dir; print the losses as JSON, and what
shows that the last sweep's factors are read back from the checkpoint files.

Run as a subprocess by test_train.py: the checkpoint directory is fixed when the
SparkContext starts, so it needs a session of its own.
"""

import json
import os
import shutil
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
    spark.sparkContext.setLogLevel("OFF")
    apply_runtime_settings(spark)
    ratings = spark.createDataFrame(data["ratings"], "user long, item string, rating double")
    trained = fit(spark, ratings, WALSParams(**data["params"]))
    files = sum(len(names) for _, _, names in os.walk(data["dir"]))
    # The last sweep ended on a reliable checkpoint: its plan is a scan of it (no sweep's
    # operators left in the lineage) ...
    plan = trained.item_factor_blocks._jdf.queryExecution().optimizedPlan().toString()
    rows = trained.item_factor_blocks.count()
    # ... and with the checkpoint files gone, the factors cannot be read any more: they were
    # read from those files, not recomputed from the lineage.
    shutil.rmtree(data["dir"])
    try:
        trained.item_factor_blocks.count()
        reread = "read without the checkpoint files"
    except Exception as error:  # noqa: BLE001 - whatever Spark raises for the missing files
        reread = type(error).__name__ + ": " + str(error)[:2000]
    result = {
        "losses": [r.loss for r in trained.history],
        "files": files,
        "plan": plan,
        "rows": rows,
        "reread": reread,
    }
    print("RESULT " + json.dumps(result))
    spark.stop()


if __name__ == "__main__":
    main()
