"""Task failures: with the first attempt of every solve task failing (walsspark.faults) and
Spark retrying it, training ends with factors bitwise identical to an undisturbed run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from job_runs import run_result_job

from walsspark.faults import maybe_fail
from walsspark.params import WALSParams
from walsspark.train import fit

JOB = Path(__file__).with_name("fault_train_job.py")


def run_job(payload: dict, extra_env: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALSSPARK_FAULT")}
    return run_result_job([str(JOB), json.dumps(payload)], env={**env, **extra_env})


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_retried_solve_tasks_give_bitwise_identical_factors(spark, tmp_path, solver):
    rng = np.random.default_rng(5)
    ratings = [
        (int(u), f"i{j}", float(rng.integers(1, 6)))
        for u in range(60)
        for j in rng.choice(40, size=7, replace=False)
    ]
    params = dict(
        rank=4, sweeps=3, num_user_blocks=2, num_item_blocks=2, regularization=0.1, solver=solver
    )
    log = tmp_path / "faults"
    log.mkdir()
    faulty = run_job(
        {"ratings": ratings, "params": params},
        {"WALSSPARK_FAULTS": "user:*,item:*", "WALSSPARK_FAULT_LOG": str(log)},
    )
    # Every solve task failed once: 2 blocks x 2 sides x 3 sweeps.
    assert faulty["faults"] == 12

    frame = spark.createDataFrame(ratings, "user long, item string, rating double")
    trained = fit(spark, frame, WALSParams(**params))
    users = {str(r["id"]): list(r["features"]) for r in trained.user_factors().collect()}
    items = {r["id"]: list(r["features"]) for r in trained.item_factors().collect()}
    assert faulty["users"] == users and faulty["items"] == items  # bitwise: float32 lists
    assert faulty["losses"] == [record.loss for record in trained.history]
    print(f"{solver}: 12 injected failures, fit {faulty['fit_seconds']:.1f} s")


def test_fault_switch_is_off_by_default(monkeypatch):
    monkeypatch.delenv("WALSSPARK_FAULTS", raising=False)
    maybe_fail("user", 0)  # no variable: nothing happens (no TaskContext is even asked)
    monkeypatch.setenv("WALSSPARK_FAULTS", "item:3")
    maybe_fail("user", 3)  # not a target
    maybe_fail("item", 2)
    maybe_fail("item", 3)  # a target, but outside a Spark task: no attempt to fail
