"""Entry point for spark-submit and Databricks Python-script tasks.

    spark-submit --py-files walsspark.zip jobs/walsspark_job.py train --input ... --output ...

``./spark-submit.sh`` runs this file. On Databricks the bundle (``databricks.yml``) runs the
wheel's ``walsspark`` entry point instead (a python_wheel_task), which is the same
function; a spark_python_task may give this file with the same arguments. The job uses
the session Spark (or Databricks) already started; it never sets the master itself.
"""

import sys

from walsspark.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
