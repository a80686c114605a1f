"""Popularity-scaled unobserved weights (eALS's w0_ij = w0 s_i t_j) against the dense oracle."""

from __future__ import annotations

import numpy as np
import oracle
import pytest
from test_train import dense_factors, initial_items, item_id, make_ratings, ratings_frame, user_id

from walsspark.errors import InputError
from walsspark.params import PRESETS, WALSParams
from walsspark.popularity import mean_power
from walsspark.solver import CsrBlock, ObjectiveWeights, gramian, solve_block, solve_block_cg
from walsspark.train import fit


def problem(seed=3, n=12, m=9, density=0.45, rank=3):
    rng = np.random.default_rng(seed)
    observed = rng.random((n, m)) < density
    observed[:, 0] = True  # one popular item
    rows, cols = np.nonzero(observed)
    values = rng.integers(1, 6, len(rows)).astype(np.float64)
    items = rng.normal(size=(m, rank))
    return rows, cols, values, observed, items


def norm(counts, exponent):
    counts = counts[counts > 0].astype(float)
    return float(np.mean(counts**exponent))


@pytest.mark.parametrize("exponents", [(0.0, 0.5), (0.7, 0.0), (0.4, 1.2)])
@pytest.mark.parametrize("solver", ["exact", "cg"])
@pytest.mark.parametrize("offset", [0.0, 2.5])
def test_block_solve_matches_dense_oracle(exponents, solver, offset):
    rows, cols, values, observed, items = problem()
    n, m = observed.shape
    w0, lam, nu = 0.3, 0.2, 0.5
    row_counts, col_counts = observed.sum(axis=1), observed.sum(axis=0)
    weights = ObjectiveWeights(
        unobserved_weight=w0,
        regularization=lam,
        reg_exponent=nu,
        reg_offset=offset,
        row_unobserved_exponent=exponents[0],
        col_unobserved_exponent=exponents[1],
        row_unobserved_norm=norm(row_counts, exponents[0]),
        col_unobserved_norm=norm(col_counts, exponents[1]),
    )
    indptr = np.concatenate([[0], np.cumsum(row_counts)]).astype(np.int64)
    block = CsrBlock(
        indptr,
        cols.astype(np.int32),
        values.astype(np.float32),
        other_counts=col_counts[cols].astype(np.float32),
    )
    t = np.where(col_counts > 0, col_counts ** exponents[1], 0) / weights.col_unobserved_norm
    weighted_gram = items.T @ (items * t[:, None])
    rank = items.shape[1]
    if solver == "exact":
        solution = solve_block(block, items.astype(np.float32), weighted_gram, weights)
    else:  # rank steps of CG reach the exact solution (to rounding)
        start = np.zeros((n, rank), dtype=np.float32)
        solution = solve_block_cg(
            block, items.astype(np.float32), weighted_gram, weights, start, steps=rank
        )
    targets, _, _ = oracle.dense_problem(rows, cols, values, n, m, w0)
    dense_weights = oracle.popularity_weights(observed, w0, *exponents)
    expected = oracle.row_update(targets, dense_weights, observed, items, lam, nu, offset)
    np.testing.assert_allclose(solution.factors, expected, rtol=2e-4, atol=2e-5)
    # The block's loss terms plus w0 tr(G_U^s G_V^t) are the dense objective's data and
    # user-regularization terms.
    s = np.where(row_counts > 0, row_counts ** exponents[0], 0) / weights.row_unobserved_norm
    users = solution.factors.astype(np.float64)
    unobserved = w0 * np.sum((users.T @ (users * s[:, None])) * weighted_gram)
    residual = targets - users @ items.T
    dense_data = np.sum(dense_weights * residual**2)
    np.testing.assert_allclose(solution.observed_loss + unobserved, dense_data, rtol=1e-4)


def test_uniform_scheme_is_the_plain_objective():
    rows, cols, values, observed, items = problem(seed=4)
    indptr = np.concatenate([[0], np.cumsum(observed.sum(axis=1))]).astype(np.int64)
    block = CsrBlock(indptr, cols.astype(np.int32), values.astype(np.float32))
    plain = ObjectiveWeights(0.2, 0.1)
    # Exponent 0 gives scales of 1 whatever the norm: the solution is the plain one, bitwise.
    scaled = ObjectiveWeights(0.2, 0.1, col_unobserved_norm=3.0, row_unobserved_norm=2.0)
    other = items.astype(np.float32)
    a = solve_block(block, other, gramian(other), plain)
    b = solve_block(block, other, gramian(other), scaled)
    np.testing.assert_array_equal(a.factors, b.factors)


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_distributed_training_matches_dense_oracle(spark, solver):
    params = WALSParams(
        rank=3,
        sweeps=3,
        unobserved_weight=0.4,
        regularization=0.1,
        reg_exponent=0.5,
        unobserved_row_weights="power:0.3",
        unobserved_col_weights="power:0.5",
        num_user_blocks=2,
        num_item_blocks=3,
        solver=solver,
        cg_steps=6,
    )
    rows, cols, values, n, m = make_ratings(seed=8)
    trained = fit(spark, ratings_frame(spark, rows, cols, values), params)
    users = dense_factors(trained.user_factors(), [user_id(i) for i in range(n)], params.rank)
    items = dense_factors(trained.item_factors(), [item_id(j) for j in range(m)], params.rank)
    targets, _, observed = oracle.dense_problem(rows, cols, values, n, m, params.unobserved_weight)
    dense_weights = oracle.popularity_weights(observed, params.unobserved_weight, 0.3, 0.5)
    expected_users, expected_items, history = oracle.train(
        targets,
        dense_weights,
        observed,
        initial_items(spark, m, params.rank, params.seed),
        params.sweeps,
        params.regularization,
        params.reg_exponent,
    )
    tolerance = dict(rtol=1e-3, atol=1e-4) if solver == "exact" else dict(rtol=2e-2, atol=2e-3)
    np.testing.assert_allclose(users, expected_users, **tolerance)
    np.testing.assert_allclose(items, expected_items, **tolerance)
    if solver == "exact":
        np.testing.assert_allclose([r.loss for r in trained.history], history, rtol=1e-5)
    counts = np.bincount(rows, minlength=n)
    assert trained.unobserved_norms[0] == pytest.approx(norm(counts, 0.3))


def test_mean_power_of_a_histogram():
    assert mean_power({1: 2, 4: 1}, 0.5) == pytest.approx((1 + 1 + 2) / 3)
    assert mean_power({3: 5}, 0.0) == 1.0


@pytest.mark.parametrize("value", ["power:x", "power:", "pow:0.5", "linear:1", 0.5, "power:inf"])
def test_bad_schemes_are_refused_with_one_line(value):
    with pytest.raises(InputError, match="unobserved_col_weights must be uniform or power:E"):
        WALSParams(unobserved_col_weights=value).validate()


def test_presets_keep_uniform_unobserved_weights_and_no_reg_offset():
    for name, preset in PRESETS.items():
        assert preset["unobserved_row_weights"] == "uniform", name
        assert preset["unobserved_col_weights"] == "uniform", name
        assert preset["reg_offset"] == 0.0, name


@pytest.mark.parametrize("side", ["users", "items"])
def test_fold_in_is_the_row_update_of_training(spark, side):
    # Projecting the training ratings again against the trained fixed side is one more
    # exact row update of the popularity-weighted objective (here with the regularization
    # offset too): the dense oracle's.
    from walsspark.fold_in import fold_in
    from walsspark.training import train_model

    params = WALSParams(
        rank=3,
        sweeps=2,
        unobserved_weight=0.5,
        regularization=0.1,
        reg_exponent=0.8,
        reg_offset=2.0,
        unobserved_row_weights="power:0.4",
        unobserved_col_weights="power:0.6",
        num_user_blocks=2,
        num_item_blocks=2,
        holdout_fraction=0.0,
    )
    rows, cols, values, n, m = make_ratings(seed=9)
    ratings = ratings_frame(spark, rows, cols, values)
    model = train_model(spark, ratings, params)
    try:
        data = model.metadata["data"]
        assert len(data["unobserved_norms"]) == 2
        users = dense_factors(model.user_factors(), [user_id(i) for i in range(n)], 3)
        items = dense_factors(model.item_factors(), [item_id(j) for j in range(m)], 3)
        by_users = side == "users"
        fixed = model.item_factors() if by_users else model.user_factors()
        blocks = model.factor_blocks["items" if by_users else "users"]
        projected, new = fold_in(ratings, fixed, params, data, side, "test", blocks)
        if by_users:
            got = dense_factors(projected, [user_id(i) for i in range(n)], 3)
        else:
            got = dense_factors(projected, [item_id(j) for j in range(m)], 3)
        new.unpersist()
    finally:
        model.release()
    targets, _, observed = oracle.dense_problem(rows, cols, values, n, m, 0.5)
    dense_weights = oracle.popularity_weights(observed, 0.5, 0.4, 0.6)
    if by_users:
        expected = oracle.row_update(targets, dense_weights, observed, items, 0.1, 0.8, 2.0)
    else:
        reg = (0.1, 0.8, 2.0)
        expected = oracle.row_update(targets.T, dense_weights.T, observed.T, users, *reg)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_fold_in_without_factor_blocks_is_refused(spark):
    from walsspark.fold_in import fold_in

    params = WALSParams(unobserved_col_weights="power:0.5")
    ratings = spark.createDataFrame([(1, "a", 1.0)], "user long, item string, rating double")
    factors = spark.createDataFrame([("a", [1.0])], "id string, features array<float>")
    data = {"user_id_type": "bigint", "item_id_type": "string"}
    with pytest.raises(InputError, match="needs the training frequencies of its factor blocks"):
        fold_in(ratings, factors, params, data, "users", "test", None)


def test_command_line_config_and_estimator_train_alike(spark, tmp_path, capsys):
    # One spelling per front door: --unobserved-col-weights, the config key, the Param.
    from ml_data import COLUMNS, SCHEMA, explicit_rows

    from walsspark.cli import main
    from walsspark.ml import WALS

    csv = tmp_path / "ratings.csv"
    csv.write_text("u,i,r\n" + "".join(f"{u},{i},{r}\n" for u, i, r in explicit_rows()))
    config = tmp_path / "wals.toml"
    config.write_text(
        'unobserved_col_weights = "power:0.5"\nunobserved_weight = 0.2\nreg_offset = 4.0\n'
    )
    common = ["--input", str(csv), "--user-col", "u", "--item-col", "i", "--rating-col", "r"]
    common += ["--rank", "3", "--sweeps", "3", "--regularization", "0.1", "--reg-exponent", "1"]
    common += ["--num-user-blocks", "2", "--num-item-blocks", "2", "--holdout-fraction", "0"]
    by_config = tmp_path / "by-config"
    assert main(["train", *common, "--config", str(config), "--output", str(by_config)]) == 0
    by_flags = tmp_path / "by-flags"
    flags = ["--unobserved-col-weights", "power:0.5", "--unobserved-weight", "0.2"]
    flags += ["--reg-offset", "4"]
    assert main(["train", *common, *flags, "--output", str(by_flags)]) == 0, capsys.readouterr()
    estimator = WALS(
        rank=3, maxIter=3, regParam=0.1, regExponent=1.0, unobservedWeight=0.2, regOffset=4.0,
        unobservedColWeights="power:0.5", numUserBlocks=2, numItemBlocks=2, **COLUMNS,
    )  # fmt: skip
    model = estimator.fit(spark.createDataFrame(explicit_rows(), SCHEMA))
    assert model.trainingParams.unobserved_col_weights == "power:0.5"
    assert model.trainingParams.reg_offset == 4.0
    expected = {r["id"]: r["features"] for r in model.itemFactors.collect()}
    for directory in (by_config, by_flags):
        items = spark.read.parquet(str(directory / "item_factors")).collect()
        assert {r["id"]: r["features"] for r in items} == expected, directory
    defaults = WALS()
    for name in ("unobservedColWeights", "unobservedRowWeights"):
        assert defaults.getOrDefault(name) == "uniform"
