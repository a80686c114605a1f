"""Emulate Databricks running python_wheel_tasks: the runtime's Spark session exists first,
then each task calls the package's console-script entry point with
``sys.argv = [package_name, *parameters]``.

    python bundle_job.py classic|connect '[{"package_name": ..., "entry_point": ...,
                                            "parameters": [...]}, ...]'

Spark settings (the file systems) come from SPARK_CONF_DIR, as from a cluster's own
configuration; DATABRICKS_RUNTIME_VERSION is set as the runtime sets it. Prints
``RESULT {"statuses": [...]}``.
"""

import json
import os
import sys
from importlib.metadata import entry_points

from pyspark.sql import SparkSession


def main() -> None:
    mode, tasks = sys.argv[1], json.loads(sys.argv[2])
    if mode == "connect":
        os.environ["DATABRICKS_RUNTIME_VERSION"] = "client.4.9"  # serverless
        SparkSession.builder.remote("local[2]").getOrCreate()
    else:
        os.environ["DATABRICKS_RUNTIME_VERSION"] = "16.4"
        SparkSession.builder.master("local[2]").getOrCreate()
    statuses = []
    for task in tasks:
        (entry_point,) = [
            ep
            for ep in entry_points(group="console_scripts", name=task["entry_point"])
            if ep.value.split(".")[0] == task["package_name"]
        ]
        sys.argv = [task["package_name"], *task["parameters"]]
        # As Databricks: what the entry point returns is ignored; it fails by raising (an
        # exit with a non-zero status included).
        try:
            entry_point.load()()
            status = 0
        except SystemExit as stop:
            status = stop.code or 0
        statuses.append(status)
        if status:
            break
    print("RESULT " + json.dumps({"statuses": statuses}))


if __name__ == "__main__":
    main()
