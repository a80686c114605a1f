"""databricks.yml: its jobs' tasks, run with exactly their parameters on an emulation of
Databricks (a session that exists before the entry point runs, /Volumes paths resolved by
Spark's default file system, here a viewfs mount over a temporary directory): the job
cluster's tasks on classic Spark, the serverless ones on Spark Connect."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from walsspark.synthetic import synthetic_ratings, write_ratings_parquet

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).parent


def load_bundle() -> dict:
    bundle = yaml.safe_load((ROOT / "databricks.yml").read_text())
    defaults = {name: spec["default"] for name, spec in bundle["variables"].items()}

    def resolve(value):
        if isinstance(value, str):
            return re.sub(r"\$\{var\.(\w+)\}", lambda m: defaults[m.group(1)], value)
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    return resolve(bundle)


def ordered_tasks(job: dict) -> list[dict]:
    """The job's tasks in an order their depends_on allows."""
    done: list[str] = []
    tasks = {task["task_key"]: task for task in job["tasks"]}
    while len(done) < len(tasks):
        ready = [
            key
            for key, task in tasks.items()
            if key not in done and all(d["task_key"] in done for d in task.get("depends_on", []))
        ]
        assert ready, f"tasks that can never run (a cycle or an unknown dependency): {tasks}"
        done += ready
    return [tasks[key] for key in done]


def test_bundle_declares_the_wheel_and_both_kinds_of_compute():
    bundle = load_bundle()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (artifact,) = bundle["artifacts"].values()
    assert scripts["walsspark"] == "walsspark.cli:run"  # exits non-zero on failure
    assert artifact["type"] == "whl" and "dist" in artifact["build"]
    jobs = bundle["resources"]["jobs"]
    cluster, serverless = jobs["walsspark_job_cluster"], jobs["walsspark_serverless"]
    for job in (cluster, serverless):
        commands = []
        for task in ordered_tasks(job):
            wheel_task = task["python_wheel_task"]
            assert wheel_task["package_name"] == "walsspark"
            assert wheel_task["entry_point"] in scripts
            commands.append(wheel_task["parameters"][0])
            assert all(isinstance(p, str) for p in wheel_task["parameters"])
        assert commands == ["train", "recommend"]
    # Spark 4 (walsspark's pyspark APIs): Databricks Runtime 17 or newer.
    for cluster_spec in cluster["job_clusters"]:
        assert int(cluster_spec["new_cluster"]["spark_version"].split(".")[0]) >= 17
    for task in cluster["tasks"]:
        assert task["job_cluster_key"] == cluster["job_clusters"][0]["job_cluster_key"]
        assert task["libraries"] == [{"whl": "./dist/*.whl"}]
    (environment,) = serverless["environments"]
    assert environment["spec"]["dependencies"] == ["./dist/*.whl"]
    for task in serverless["tasks"]:
        assert task["environment_key"] == environment["environment_key"]
        assert "job_cluster_key" not in task and "libraries" not in task


def run_job(tmp_path: Path, job: dict, mode: str, volumes: Path) -> None:
    conf_dir = tmp_path / f"conf-{mode}"
    conf_dir.mkdir()
    # The workspace's file system: /Volumes/... is a mount over a temporary directory.
    (conf_dir / "spark-defaults.conf").write_text(
        f"spark.hadoop.fs.viewfs.mounttable.dbx.link./Volumes  file://{volumes}\n"
        "spark.hadoop.fs.defaultFS  viewfs://dbx/\n"
    )
    tasks = [task["python_wheel_task"] for task in ordered_tasks(job)]
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_CONF_DIR=str(conf_dir))
    for name in ("PYSPARK_GATEWAY_PORT", "SPARK_REMOTE"):
        env.pop(name, None)
    completed = subprocess.run(
        [sys.executable, str(TESTS / "bundle_job.py"), mode, json.dumps(tasks)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=900,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert completed.returncode == 0 and lines, completed.stderr[-4000:]
    statuses = json.loads(lines[0][len("RESULT ") :])["statuses"]
    assert statuses == [0] * len(tasks), completed.stderr[-4000:]


def factors(path: Path) -> dict:
    return {row["id"]: row["features"] for row in pq.read_table(str(path)).to_pylist()}


def lists(path: Path) -> dict:
    rows = pq.read_table(str(path)).to_pylist()
    return {row["id"]: [x["id"] for x in row["recommendations"]] for row in rows}


@pytest.fixture(scope="module")
def volumes(tmp_path_factory) -> Path:
    """The directory behind /Volumes, holding the ratings the bundle's jobs read."""
    root = tmp_path_factory.mktemp("volumes")
    data_dir = load_bundle()["variables"]["data_dir"]["default"]
    ratings = root / Path(data_dir).relative_to("/Volumes") / "ratings" / "part-0.parquet"
    ratings.parent.mkdir(parents=True)
    table = synthetic_ratings(num_users=300, num_items=150, mean_ratings_per_user=12, seed=5)
    write_ratings_parquet(table, str(ratings))
    return root


def test_job_cluster_on_classic_and_serverless_on_connect_agree(volumes, tmp_path):
    bundle = load_bundle()
    jobs = bundle["resources"]["jobs"]
    data = volumes / Path(bundle["variables"]["data_dir"]["default"]).relative_to("/Volumes")
    run_job(tmp_path, jobs["walsspark_job_cluster"], "classic", volumes)
    run_job(tmp_path, jobs["walsspark_serverless"], "connect", volumes)

    classic, connect = (
        factors(data / "model" / "item_factors"),
        factors(data / "model-serverless" / "item_factors"),
    )
    assert classic.keys() == connect.keys() and len(classic) > 100
    for key, value in classic.items():
        np.testing.assert_allclose(connect[key], value, rtol=1e-4, atol=1e-5)
    recommendations = lists(data / "recommendations")
    assert len(recommendations) == 300 and {len(v) for v in recommendations.values()} == {10}
    assert lists(data / "recommendations-serverless") == recommendations
