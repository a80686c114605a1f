"""Shared fixtures: one local[2] SparkSession for the whole test session.

The session also mounts a file system that Python cannot see: Hadoop's viewfs, with the
mount table ``wals`` linking ``viewfs://wals/data`` to a temporary directory (the
``viewfs_root`` fixture). Paths there are reachable only through Spark, like HDFS or S3.
"""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

VIEWFS_TABLE = "wals"


@pytest.fixture(scope="session")
def viewfs_root():
    """The local directory behind ``viewfs://wals/data`` (for the test's own checks)."""
    with tempfile.TemporaryDirectory(prefix="walsspark-viewfs-") as root:
        yield root


@pytest.fixture(scope="session")
def spark(viewfs_root):
    from walsspark.session import get_or_create_session

    settings = {
        f"spark.hadoop.fs.viewfs.mounttable.{VIEWFS_TABLE}.link./data": f"file://{viewfs_root}"
    }
    session = get_or_create_session(
        master="local[2]", app_name="walsspark-tests", settings=settings
    )
    session.sparkContext.setLogLevel("ERROR") if hasattr(session, "sparkContext") else None
    yield session
    session.stop()
