"""Running a test job in a Python process of its own (its own Spark session) and reading
the one ``RESULT <json>`` line it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_result_job(args: list[str], timeout: float = 600, env: dict | None = None) -> dict:
    """Run ``python *args``; assert it succeeded and printed a ``RESULT`` line; return the
    JSON after it. ``env`` defaults to this process's environment; either way the job's
    Spark workers run this interpreter (``PYSPARK_PYTHON``)."""
    environment = dict(os.environ if env is None else env, PYSPARK_PYTHON=sys.executable)
    completed = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert completed.returncode == 0 and lines, completed.stderr[-3000:]
    return json.loads(lines[0][len("RESULT ") :])
