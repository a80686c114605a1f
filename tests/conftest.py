"""Shared fixtures: one local[2] SparkSession for the whole test session."""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def spark():
    from walsspark.session import get_or_create_session

    session = get_or_create_session(master="local[2]", app_name="walsspark-tests")
    session.sparkContext.setLogLevel("ERROR") if hasattr(session, "sparkContext") else None
    yield session
    session.stop()
