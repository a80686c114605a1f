"""Run the command chain (cli_chain.run_chain) in a fresh process; print the results.

    python chain_job.py PREFIX '["--conf", "KEY=VALUE", ...]'

Run as a subprocess by test_filesystems.py: a session with another default file system,
or a Spark Connect one (SPARK_REMOTE=local[2]), needs a process of its own.
"""

import json
import sys

from cli_chain import run_chain

if __name__ == "__main__":
    results = run_chain(sys.argv[1], json.loads(sys.argv[2]))
    print("RESULT " + json.dumps(results))
