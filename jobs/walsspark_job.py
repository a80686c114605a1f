"""Entry point for spark-submit and Databricks Python-script tasks.

    spark-submit --py-files walsspark.zip jobs/walsspark_job.py train --input ... --output ...

On Databricks, install the walsspark wheel on the cluster (or the job's environment) and
give this file as the task's Python script with the same arguments. The job uses the
session Spark (or Databricks) already started; it never sets the master itself.
"""

import sys

from walsspark.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
