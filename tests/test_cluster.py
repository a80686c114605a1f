"""A real multi-worker cluster: ./spark-submit.sh against a Spark standalone master with two
workers on 127.0.0.1, the executors running Python from the shipped environment archive.

Training (with a reliable checkpoint directory) and recommending there give the factors
of a local[2] run (float32 tolerance) and the same recommendation lists. The wall times of
the two submissions are printed (run pytest with -s to see them; README.md quotes them).

Executor loss: the same training with ``--checkpoint-dir``, one worker's executor JVM
killed by PID during sweep 4, ends with the factors of the undisturbed cluster run, bitwise.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from standalone import standalone_cluster

from walsspark.cli import main
from walsspark.synthetic import synthetic_ratings, write_ratings_parquet

ROOT = Path(__file__).resolve().parent.parent
# No block counts: on the cluster they come from its two task slots (one core per worker);
# the result does not depend on them (initial factors are a function of seed and id).
TRAIN_ARGS = [
    "--rank", "4", "--sweeps", "4",
    "--holdout-fraction", "0.1", "--seed", "3", "--checkpoint-interval", "2",
    "--unobserved-weight", "0.1", "--regularization", "0.1",
]  # fmt: skip


def submit_environment() -> dict:
    """This environment for ./spark-submit.sh: executors run this Python, and no setting
    of the test session (its gateway, a Connect remote, a Spark home) leaks in."""
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    for name in ("PYSPARK_GATEWAY_PORT", "SPARK_REMOTE", "SPARK_CONF_DIR", "SPARK_HOME"):
        env.pop(name, None)
    return env


def submit(*args: str, timeout: int = 900) -> tuple[subprocess.CompletedProcess, float]:
    env = submit_environment()
    start = time.perf_counter()
    completed = subprocess.run(
        [str(ROOT / "spark-submit.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return completed, time.perf_counter() - start


def submit_and_kill_an_executor(
    *args: str, after: str, work_dir: Path, timeout: int = 900
) -> tuple[int, str, float]:
    """Run ./spark-submit.sh; once ``after`` appears in its log, SIGKILL the executor JVM
    working in ``work_dir`` (one worker's). Returns the exit status, the log and the wall
    time."""
    env = submit_environment()
    start = time.perf_counter()
    process = subprocess.Popen(
        [str(ROOT / "spark-submit.sh"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    log, killed, killed_at = [], None, 0.0
    try:
        for line in process.stdout:
            log.append(line)
            if killed is not None:
                # When each line arrived after the kill (the restart and the sweeps after it).
                log.append(f"TEST: +{time.perf_counter() - killed_at:.1f} s after the kill\n")
            if killed is None and after in line:
                killed = executor_pid(work_dir)
                os.kill(killed, signal.SIGKILL)
                killed_at = time.perf_counter()
                log.append(f"TEST: killed executor {killed}\n")
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
    assert killed is not None, "".join(log[-40:])
    return process.returncode, "".join(log), time.perf_counter() - start


def executor_pid(work_dir: Path) -> int:
    """The PID of the executor JVM whose working directory is under ``work_dir``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if b"CoarseGrainedExecutorBackend" in command and cwd.startswith(str(work_dir)):
            return int(entry.name)
    raise AssertionError(f"no executor JVM working in {work_dir}")


def factors(path: Path) -> dict:
    return {row["id"]: row["features"] for row in pq.read_table(str(path)).to_pylist()}


def lists(path: Path) -> dict:
    return {
        row["id"]: [x["id"] for x in row["recommendations"]]
        for row in pq.read_table(str(path)).to_pylist()
    }


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cluster-data") / "ratings.parquet"
    table = synthetic_ratings(num_users=400, num_items=200, mean_ratings_per_user=15, seed=8)
    write_ratings_parquet(table, str(path))
    return path


def test_train_and_recommend_on_a_standalone_cluster(spark, ratings, tmp_path):
    # The reference: the same training in the local[2] test session.
    local_model = tmp_path / "local-model"
    train = ["train", "--input", str(ratings), *TRAIN_ARGS]
    assert main([*train, "--output", str(local_model)]) == 0
    local_recs = tmp_path / "local-recs"
    assert main(["recommend", "--model", str(local_model), "--k", "5",
                 "--output", str(local_recs)]) == 0  # fmt: skip

    with standalone_cluster(tmp_path / "cluster", workers=2, cores=1) as cluster:
        model, recs, checkpoints = tmp_path / "model", tmp_path / "recs", tmp_path / "ckpt"
        options = [
            "--master", cluster.master_url, "--pack-env",
            "--conf", "spark.cores.max=2", "--conf", "spark.executor.memory=1g",
        ]  # fmt: skip
        trained, train_seconds = submit(
            *options, *train, "--output", str(model),
            "--conf", f"spark.checkpoint.dir=file://{checkpoints}",
        )  # fmt: skip
        assert trained.returncode == 0, trained.stderr[-5000:]
        recommended, recommend_seconds = submit(
            *options, "recommend", "--model", str(model), "--k", "5", "--output", str(recs)
        )
        assert recommended.returncode == 0, recommended.stderr[-5000:]
        print(
            f"\nstandalone cluster (2 workers x 1 core), wall time of ./spark-submit.sh: "
            f"train {train_seconds:.1f} s, recommend {recommend_seconds:.1f} s"
        )

        # spark-submit sends the Python driver's stderr (the log lines) to its stdout.
        log = trained.stdout + trained.stderr
        assert re.search(
            r"master spark://127\.0\.0\.1:\d+: 2 executors on \S+; 2 task slots", log
        ), log[-3000:]
        # The executors ran Python from the shipped archive, unpacked in the workers' work
        # directories: not the driver's virtual environment.
        (pythons,) = re.findall(r"executors run (.*)", log)
        work_dirs = [str(work_dir) for work_dir in cluster.work_dirs]
        shown = re.findall(r"(/\S+/bin/python)", pythons)
        assert shown and all("/environment/bin/python" in p for p in shown), pythons
        assert all(any(p.startswith(w) for w in work_dirs) for p in shown), (pythons, work_dirs)
        assert sys.prefix not in pythons
        assert "2 user blocks and 2 item blocks" in log
        # A reliable checkpoint was written to the checkpoint directory (sweeps 2 and 4).
        assert any(files for _, _, files in os.walk(checkpoints))

        # Executor loss: the same training, sweep checkpoints at sweeps 2 and 4 in a
        # directory all processes share; every solve task sleeps 1 s (walsspark.faults), so
        # that the kill lands while sweep 4 runs. Sweep 4 needs sweep 3's local checkpoints,
        # some of them lost with the executor: training goes back to sweep 2's checkpoint.
        lost_model = tmp_path / "model-executor-lost"
        status, lost_log, lost_seconds = submit_and_kill_an_executor(
            *options, "--conf", "spark.executorEnv.WALSSPARK_TASK_DELAY=1",
            *train, "--output", str(lost_model),
            "--checkpoint-dir", f"file://{tmp_path / 'sweep-checkpoints'}",
            after="sweep 3/4", work_dir=cluster.work_dirs[0],
        )  # fmt: skip
        assert status == 0, lost_log[-5000:]
        print(f"executor killed in sweep 4: train {lost_seconds:.1f} s (1 s sleep per task)")
        for line_pattern in ("lost its input with an executor", "sweep 4/4"):
            found = re.search(re.escape(line_pattern) + r".*\nTEST: \+([\d.]+) s", lost_log)
            if found:
                print(f"  '{line_pattern}' {found.group(1)} s after the kill")
        assert "lost its input with an executor" in lost_log, lost_log[-5000:]
        assert "computing again from the checkpoint of sweep 2" in lost_log, lost_log[-5000:]
    # Bitwise the undisturbed cluster run's factors (same 2 x 2 blocks).
    assert factors(lost_model / "user_factors") == factors(model / "user_factors")
    assert factors(lost_model / "item_factors") == factors(model / "item_factors")

    local_users, cluster_users = (
        factors(local_model / "user_factors"),
        factors(model / "user_factors"),
    )
    assert cluster_users.keys() == local_users.keys()
    for key, value in local_users.items():
        np.testing.assert_allclose(cluster_users[key], value, rtol=1e-4, atol=1e-5)
    local_items, cluster_items = (
        factors(local_model / "item_factors"),
        factors(model / "item_factors"),
    )
    for key, value in local_items.items():
        np.testing.assert_allclose(cluster_items[key], value, rtol=1e-4, atol=1e-5)
    assert lists(recs) == lists(local_recs)
