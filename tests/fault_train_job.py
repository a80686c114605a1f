"""Train in a fresh local[2,4] session (tasks retried up to 4 times); print the factors,
losses, fit time and the number of injected failures as JSON.

Run by test_faults.py with and without ``WALSSPARK_FAULTS`` in its environment.
"""

import json
import os
import sys

from walsspark.params import WALSParams
from walsspark.session import get_or_create_session
from walsspark.train import fit


def main() -> None:
    data = json.loads(sys.argv[1])
    spark = get_or_create_session(master="local[2,4]", app_name="walsspark-faults")
    ratings = spark.createDataFrame(data["ratings"], "user long, item string, rating double")
    trained = fit(spark, ratings, WALSParams(**data["params"]))
    log = os.environ.get("WALSSPARK_FAULT_LOG")
    result = {
        "users": {str(r["id"]): list(r["features"]) for r in trained.user_factors().collect()},
        "items": {r["id"]: list(r["features"]) for r in trained.item_factors().collect()},
        "losses": [record.loss for record in trained.history],
        "fit_seconds": trained.fit_seconds,
        "faults": len(os.listdir(log)) if log else 0,
    }
    print("RESULT " + json.dumps(result))
    spark.stop()


if __name__ == "__main__":
    main()
