"""Distributed training against the dense oracle, on a local Spark session."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import oracle
import pytest
from job_runs import run_result_job
from pyspark.sql import functions as F

from walsspark.factors import initial_factors
from walsspark.params import WALSParams
from walsspark.train import fit


def make_ratings(seed: int = 0, n: int = 30, m: int = 20, density: float = 0.3):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, m)) < density
    rows, cols = np.nonzero(mask)
    values = rng.integers(1, 6, len(rows)).astype(np.float64)
    return rows, cols, values, n, m


def user_id(i: int) -> int:
    return 1000 + 7 * i


def item_id(j: int) -> str:
    return f"item-{j}"


def ratings_frame(spark, rows, cols, values):
    data = [
        (user_id(int(i)), item_id(int(j)), float(v))
        for i, j, v in zip(rows, cols, values, strict=True)
    ]
    return spark.createDataFrame(data, "user long, item string, rating double")


def initial_items(spark, m: int, rank: int, seed: int) -> np.ndarray:
    return initial_items_of(spark, [item_id(j) for j in range(m)], rank, seed)


def dense_factors(frame, ids, rank: int) -> np.ndarray:
    rows = {row["id"]: row["features"] for row in frame.collect()}
    return np.array([rows.get(i, [0.0] * rank) for i in ids], dtype=np.float64)


def train_and_compare(spark, params: WALSParams, seed: int = 0):
    rows, cols, values, n, m = make_ratings(seed)
    trained = fit(spark, ratings_frame(spark, rows, cols, values), params)
    users = dense_factors(trained.user_factors(), [user_id(i) for i in range(n)], params.rank)
    items = dense_factors(trained.item_factors(), [item_id(j) for j in range(m)], params.rank)

    targets, weights, observed = oracle.dense_problem(
        rows, cols, values, n, m, params.unobserved_weight
    )
    expected_users, expected_items, history = oracle.train(
        targets,
        weights,
        observed,
        initial_items(spark, m, params.rank, params.seed),
        params.sweeps,
        params.regularization,
        params.reg_exponent,
        params.reg_offset,
    )
    return trained, users, items, expected_users, expected_items, history


@pytest.mark.parametrize(
    "setting",
    [
        dict(unobserved_weight=0.1, regularization=0.1, reg_exponent=0.0),  # TF WALS defaults
        dict(unobserved_weight=0.0, regularization=0.1, reg_exponent=1.0),  # MLlib explicit
        # Rendle et al.'s frequency-scaled regularization lambda (n_i + o) ** nu.
        dict(unobserved_weight=0.2, regularization=0.05, reg_exponent=0.7, reg_offset=3.5),
    ],
    ids=["tf-defaults", "mllib-explicit", "reg-offset"],
)
def test_distributed_factors_equal_dense_oracle(spark, setting):
    # rank 6 > the default cg_steps: only exact solves match the oracle here.
    params = WALSParams(rank=6, sweeps=4, num_user_blocks=2, num_item_blocks=3, **setting)
    trained, users, items, expected_users, expected_items, history = train_and_compare(
        spark, params
    )
    np.testing.assert_allclose(users, expected_users, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(items, expected_items, rtol=1e-3, atol=1e-4)
    losses = [record.loss for record in trained.history]
    np.testing.assert_allclose(losses, history, rtol=1e-5)
    assert all(
        later <= earlier * (1 + 1e-9) for earlier, later in zip(losses, losses[1:], strict=False)
    )


def test_result_does_not_depend_on_block_count(spark):
    rows, cols, values, n, m = make_ratings(seed=5, n=40, m=25)
    ratings = ratings_frame(spark, rows, cols, values).cache()
    results = []
    for blocks in (1, 2, 7):
        params = WALSParams(
            rank=4, sweeps=3, regularization=0.2, num_user_blocks=blocks, num_item_blocks=blocks
        )
        trained = fit(spark, ratings, params)
        users = dense_factors(trained.user_factors(), [user_id(i) for i in range(n)], 4)
        items = dense_factors(trained.item_factors(), [item_id(j) for j in range(m)], 4)
        results.append((users, items))
    for users, items in results[1:]:
        np.testing.assert_allclose(users, results[0][0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(items, results[0][1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_reduced_and_routed_gramians_give_the_same_bytes(spark, monkeypatch, solver):
    """Few blocks: the Gramians ride on the routes; many: they are reduced once per
    half-sweep. Both add the block Gramians in block order, so the factors and losses are
    bitwise the same (7 x 5 blocks over 40 x 25 ids: empty routes and empty blocks)."""
    from walsspark import half_sweep

    rows, cols, values, n, m = make_ratings(seed=6, n=40, m=25)
    ratings = ratings_frame(spark, rows, cols, values).cache()
    params = WALSParams(rank=4, sweeps=3, num_user_blocks=7, num_item_blocks=5, solver=solver)
    results = []
    for routed_bytes in (half_sweep.ROUTED_GRAMIAN_BYTES, 0):
        monkeypatch.setattr(half_sweep, "ROUTED_GRAMIAN_BYTES", routed_bytes)
        assert half_sweep.gramians_on_routes(7, 5, 4) == (routed_bytes > 0)
        trained = fit(spark, ratings, params)
        results.append(
            (
                [r.loss for r in trained.history],
                sorted(trained.user_factors().collect()),
                sorted(trained.item_factors().collect()),
            )
        )
        trained.release()
    assert results[0] == results[1]


def test_more_blocks_than_ids(spark):
    # 3 users and 2 items in 5 blocks per side: most blocks are empty.
    ratings = spark.createDataFrame(
        [(1, "a", 5.0), (2, "a", 3.0), (3, "b", 4.0), (1, "b", 2.0)],
        "user long, item string, rating double",
    )
    params = WALSParams(rank=2, sweeps=2, num_user_blocks=5, num_item_blocks=5)
    trained = fit(spark, ratings, params)
    assert sorted(row["id"] for row in trained.user_factors().collect()) == [1, 2, 3]
    assert sorted(row["id"] for row in trained.item_factors().collect()) == ["a", "b"]
    # The loss must count every block's regularization even though most blocks are empty.
    items = ["a", "b"]
    targets, weights, observed = oracle.dense_problem(
        np.array([0, 1, 2, 0]),
        np.array([0, 0, 1, 1]),
        np.array([5.0, 3.0, 4.0, 2.0]),
        3,
        2,
        params.unobserved_weight,
    )
    _, _, history = oracle.train(
        targets,
        weights,
        observed,
        initial_items_of(spark, items, 2, params.seed),
        params.sweeps,
        params.regularization,
        params.reg_exponent,
    )
    np.testing.assert_allclose([r.loss for r in trained.history], history, rtol=1e-5)


def initial_items_of(
    spark, items: list, rank: int, seed: int, id_type: str = "string"
) -> np.ndarray:
    """Initial factors of the given item ids (xxhash64(seed, id), as documented)."""
    ids = spark.createDataFrame([(i,) for i in items], f"id {id_type}")
    hashes = {
        row["id"]: row["h"]
        for row in ids.select("id", F.xxhash64(F.lit(seed).cast("long"), "id").alias("h")).collect()
    }
    return initial_factors(np.array([hashes[i] for i in items]), rank)


def test_reliable_checkpoints_when_a_checkpoint_dir_is_set(spark, tmp_path):
    rows, cols, values, n, m = make_ratings(seed=2)
    ratings = [
        (user_id(int(i)), item_id(int(j)), float(v))
        for i, j, v in zip(rows, cols, values, strict=True)
    ]
    setting = dict(rank=3, sweeps=4, num_user_blocks=2, num_item_blocks=2, checkpoint_interval=2)
    job = Path(__file__).with_name("checkpoint_train_job.py")
    payload = json.dumps({"ratings": ratings, "params": setting, "dir": str(tmp_path / "ckpt")})
    result = run_result_job([str(job), payload])
    assert result["files"] > 0  # something was written to the checkpoint directory
    # The last sweep (4, a multiple of the interval) is read from its checkpoint: the plan
    # scans the checkpointed data with no half-sweep operator left, and deleting the files
    # makes the factors unreadable instead of recomputing them.
    assert "LogicalRDD" in result["plan"] and "FlatMapCoGroupsInArrow" not in result["plan"]
    assert result["rows"] > 0
    assert result["reread"] != "read without the checkpoint files"
    assert "FileNotFound" in result["reread"] or "does not exist" in result["reread"]
    # Same numbers as with local checkpoints only.
    local = fit(spark, ratings_frame(spark, rows, cols, values), WALSParams(**setting))
    np.testing.assert_allclose(result["losses"], [r.loss for r in local.history], rtol=1e-9)


def test_cg_solver_with_enough_steps_trains_like_the_exact_one(spark):
    setting = dict(rank=3, sweeps=3, num_user_blocks=2, num_item_blocks=2, regularization=0.1)
    rows, cols, values, n, m = make_ratings(seed=6)
    ratings = ratings_frame(spark, rows, cols, values).cache()
    exact = fit(spark, ratings, WALSParams(**setting))
    cg = fit(spark, ratings, WALSParams(solver="cg", cg_steps=8, **setting))
    few = fit(spark, ratings, WALSParams(solver="cg", cg_steps=1, **setting))
    ids = [user_id(i) for i in range(n)]
    exact_users = dense_factors(exact.user_factors(), ids, 3)
    np.testing.assert_allclose(
        dense_factors(cg.user_factors(), ids, 3), exact_users, rtol=1e-3, atol=1e-4
    )
    np.testing.assert_allclose(
        [r.loss for r in cg.history], [r.loss for r in exact.history], rtol=1e-5
    )
    # One step per sweep is not exact, but it still lowers the loss sweep after sweep.
    losses = [r.loss for r in few.history]
    assert losses[-1] > exact.history[-1].loss * (1 + 1e-6)
    assert all(b <= a * (1 + 1e-9) for a, b in zip(losses, losses[1:], strict=False))


def test_tol_stops_when_the_loss_settles(spark):
    rows, cols, values, _, _ = make_ratings(seed=7)
    ratings = ratings_frame(spark, rows, cols, values)
    params = WALSParams(rank=3, sweeps=30, tol=1e-3, num_user_blocks=1, num_item_blocks=1)
    trained = fit(spark, ratings, params)
    losses = [r.loss for r in trained.history]
    assert 2 <= len(losses) < 30
    assert abs(losses[-2] - losses[-1]) / losses[-2] < 1e-3
    assert all(abs(a - b) / a >= 1e-3 for a, b in zip(losses[:-2], losses[1:-1], strict=True))
    assert [r.metrics for r in trained.history] == [None] * len(losses)


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_holdout_scored_in_the_sweep_equals_per_id_scoring(spark, solver):
    """The holdout metrics scored inside the item half-sweeps equal scoring per-id factor
    rows after training, cold pairs and per-entry confidences included."""
    from walsspark.evaluate import holdout_metrics

    rows, cols, values, n, m = make_ratings(seed=12, n=40, m=25)
    ratings = ratings_frame(spark, rows, cols, values)
    params = WALSParams(
        rank=3,
        sweeps=2,
        num_user_blocks=3,
        num_item_blocks=2,
        holdout_fraction=0.3,
        solver=solver,
    )
    train, holdout = ratings.randomSplit([0.7, 0.3], seed=4)
    holdout = holdout.union(
        spark.createDataFrame(
            [(99999, "item-0", 3.0), (user_id(0), "nowhere", 1.0)], holdout.schema
        )
    ).withColumn("confidence", F.lit(2.0))
    trained = fit(spark, train, params, holdout)
    got = trained.history[-1].metrics
    expected = holdout_metrics(trained.user_factors(), trained.item_factors(), holdout, params)
    assert got["count"] == expected["count"] and got["cold_count"] == expected["cold_count"] >= 2
    for name in ("rmse", "mae", "loss", "rwse"):
        assert got[name] == pytest.approx(expected[name], rel=1e-9), name
    # Scoring changes nothing in the training: the same factors as without a holdout.
    plain = fit(spark, train, params)
    for side in ("user_factors", "item_factors"):
        with_holdout = sorted(getattr(trained, side)().collect())
        without = sorted(getattr(plain, side)().collect())
        assert with_holdout == without, side
    plain.release()
    trained.release()
