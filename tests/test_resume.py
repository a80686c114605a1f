"""A killed driver: ``walsspark train --checkpoint-dir DIR`` is killed (SIGKILL to its whole
process group, the JVM with it) right after a sweep checkpoint is written;
``walsspark train ... --resume`` continues from it and ends with the factors and per-sweep
losses of an uninterrupted run, bitwise. The checkpoint directory is on viewfs, a file
system only Spark can reach (as HDFS or S3 would be).

Checkpoints of other data or other parameters, and a directory holding a checkpoint
without ``--resume``, are refused with one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cli_assertions import assert_one_error_line
from conftest import VIEWFS_TABLE

from walsspark.cli import main
from walsspark.synthetic import synthetic_ratings, write_ratings_parquet

TRAIN = [
    "--rank", "4", "--sweeps", "6", "--checkpoint-interval", "2", "--seed", "5",
    "--num-user-blocks", "2", "--num-item-blocks", "2", "--holdout-fraction", "0.1",
]  # fmt: skip


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("resume-data") / "ratings.parquet"
    table = synthetic_ratings(num_users=300, num_items=150, mean_ratings_per_user=12, seed=4)
    write_ratings_parquet(table, str(path))
    return path


def factors(model: Path) -> dict:
    tables = {}
    for name in ("user_factors", "item_factors"):
        rows = pq.read_table(str(model / name)).to_pylist()
        tables[name] = {row["id"]: row["features"] for row in rows}
    return tables


def losses(model: Path) -> list[float]:
    (part,) = (model / "metadata").glob("part-*")
    return [entry["loss"] for entry in json.loads(part.read_text())["history"]]


def train_until_killed(args: list[str], viewfs_root: str, line: str) -> tuple[str, float]:
    """Run ``walsspark train *args`` in a process group of its own; SIGKILL the group as
    soon as ``line`` appears in its log. Returns the log and the seconds until the kill."""
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    mount = f"spark.hadoop.fs.viewfs.mounttable.{VIEWFS_TABLE}.link./data=file://{viewfs_root}"
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "walsspark.cli", "--conf", mount, "train", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    log = []
    try:
        for text in process.stderr:
            log.append(text)
            if line in text:
                os.killpg(process.pid, signal.SIGKILL)
                break
        else:
            pytest.fail("the run ended before " + line + ":\n" + "".join(log[-30:]))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    return "".join(log), time.perf_counter() - start


def test_a_killed_driver_resumes_to_the_uninterrupted_model(
    spark, ratings, tmp_path, viewfs_root, caplog
):
    reference = tmp_path / "reference"
    assert main(["train", "--input", str(ratings), *TRAIN, "--output", str(reference)]) == 0

    checkpoints = f"viewfs://{VIEWFS_TABLE}/data/resume-{tmp_path.name}"
    model = tmp_path / "model"
    args = ["--input", str(ratings), *TRAIN, "--output", str(model)]
    args += ["--checkpoint-dir", checkpoints]
    log, seconds = train_until_killed(args, viewfs_root, "checkpoint of sweep 4 written")
    print(f"\nkilled (SIGKILL) {seconds:.1f} s after the start, after the checkpoint of sweep 4")
    assert "sweep 5/6" not in log
    assert not model.exists()  # nothing published: the model is written after the sweeps

    caplog.set_level("INFO", logger="walsspark")
    start = time.perf_counter()
    assert main(["train", *args, "--resume"]) == 0
    print(f"resumed run: {time.perf_counter() - start:.1f} s (2 sweeps and the save)")
    assert "resuming from the checkpoint of sweep 4" in caplog.text
    assert "sweep 5/6" in caplog.text and "sweep 3/6" not in caplog.text
    assert factors(model) == factors(reference)  # bitwise: float32 lists compared exactly
    assert losses(model) == losses(reference)


def test_a_checkpoint_of_another_run_is_refused(spark, ratings, tmp_path, capsys):
    checkpoints = str(tmp_path / "checkpoints")
    model = tmp_path / "model"
    args = ["--input", str(ratings), "--output", str(model), "--checkpoint-dir", checkpoints]
    short = [*TRAIN]
    short[short.index("--sweeps") + 1] = "2"
    assert main(["train", *args, *short]) == 0
    capsys.readouterr()
    # The same directory again without --resume.
    status = main(["train", *args, *short, "--output", str(tmp_path / "other")])
    assert_one_error_line(
        status, capsys.readouterr(), ["holds a checkpoint of sweep 2", "--resume"]
    )
    # Other parameters.
    other_rank = [*short]
    other_rank[other_rank.index("--rank") + 1] = "5"
    status = main(["train", *args, *other_rank, "--resume", "--overwrite"])
    assert_one_error_line(status, capsys.readouterr(), ["other parameters", "rank 4", "5 here"])
    # Other data: one rating changed.
    table = pq.read_table(str(ratings)).to_pylist()
    table[0]["rating"] += 1.0
    changed = tmp_path / "changed.parquet"
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(table), str(changed))
    status = main(["train", *args, *short, "--input", str(changed), "--resume", "--overwrite"])
    assert_one_error_line(status, capsys.readouterr(), ["other data", "digest"])
    # Fewer sweeps than the checkpoint has: never a model of more sweeps than asked for.
    one = [*short]
    one[one.index("--sweeps") + 1] = "1"
    status = main(["train", *args, *one, "--resume", "--overwrite"])
    assert_one_error_line(status, capsys.readouterr(), ["of sweep 2, past --sweeps 1"])
    # --resume without a directory to resume from.
    status = main(["train", "--input", str(ratings), "--output", str(model), "--resume"])
    assert_one_error_line(status, capsys.readouterr(), ["--resume needs --checkpoint-dir"])
    # --overwrite starts again in the same directory.
    assert main(["train", *args, *short, "--overwrite"]) == 0
    # Stopped by tol before a due sweep: the last sweep is checkpointed all the same.
    stopped = tmp_path / "checkpoints-tol"
    tol = [*short, "--sweeps", "6", "--checkpoint-interval", "5", "--tol", "0.9"]
    tol += ["--checkpoint-dir", str(stopped)]
    assert main(["train", *args, *tol, "--overwrite"]) == 0
    markers = [json.loads(p.read_text()) for p in stopped.glob("sweeps-*/checkpoint/part-*")]
    assert [m["sweep"] for m in markers] == [len(losses(model))]
    assert len(losses(model)) < 5
