"""Block solver against the dense oracle (numpy only, no Spark)."""

from __future__ import annotations

import numpy as np
import oracle
import pytest

from walsspark import solver
from walsspark.factors import decode_factors, encode_factors, initial_factors
from walsspark.solver import CsrBlock, ObjectiveWeights, gramian, solve_block

SETTINGS = {
    "tf-defaults": dict(w0=0.1, lam=0.1, nu=0.0),
    "mllib-explicit": dict(w0=0.0, lam=0.1, nu=1.0),
    "weighted-rows-cols": dict(w0=0.5, lam=0.3, nu=0.5, row_weight=2.0, col_weight=0.5),
}


def random_problem(seed: int, n: int = 25, m: int = 15, density: float = 0.3):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, m)) < density
    mask[3] = False  # a row without observations
    rows, cols = np.nonzero(mask)
    values = rng.integers(1, 6, len(rows)).astype(np.float64)
    return rows, cols, values, n, m


def csr_of(rows, cols, values, n) -> CsrBlock:
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    order = np.lexsort((cols, rows))
    return CsrBlock(indptr, cols[order].astype(np.int32), values[order].astype(np.float32))


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_row_update_equals_dense_oracle(name):
    s = SETTINGS[name]
    rows, cols, values, n, m = random_problem(1)
    rank = 4
    items = np.random.default_rng(2).standard_normal((m, rank)).astype(np.float32)
    weights = ObjectiveWeights(
        s["w0"], s["lam"], s["nu"], s.get("row_weight", 1.0), s.get("col_weight", 1.0)
    )
    solution = solve_block(csr_of(rows, cols, values, n), items, gramian(items), weights)

    targets, w, observed = oracle.dense_problem(
        rows, cols, values, n, m, s["w0"], s.get("row_weight", 1.0), s.get("col_weight", 1.0)
    )
    expected = oracle.row_update(targets, w, observed, items.astype(np.float64), s["lam"], s["nu"])
    np.testing.assert_allclose(solution.factors, expected, rtol=1e-4, atol=1e-5)
    assert np.all(solution.factors[3] == 0.0)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_loss_terms_add_up_to_dense_loss(name):
    s = SETTINGS[name]
    rows, cols, values, n, m = random_problem(3)
    rank = 3
    items = np.random.default_rng(4).standard_normal((m, rank)).astype(np.float32)
    weights = ObjectiveWeights(
        s["w0"], s["lam"], s["nu"], s.get("row_weight", 1.0), s.get("col_weight", 1.0)
    )
    solution = solve_block(csr_of(rows, cols, values, n), items, gramian(items), weights)
    users = solution.factors.astype(np.float64)
    targets, w, observed = oracle.dense_problem(
        rows, cols, values, n, m, s["w0"], s.get("row_weight", 1.0), s.get("col_weight", 1.0)
    )
    # Column regularization is zero here so that only the block's own terms are compared.
    dense = oracle.loss(targets, w, observed, users, items.astype(np.float64), s["lam"], s["nu"])
    dense -= oracle.loss(
        np.zeros_like(targets),
        np.zeros_like(w),
        observed,
        np.zeros_like(users),
        items.astype(np.float64),
        s["lam"],
        s["nu"],
    )
    assembled = (
        solution.observed_loss
        + s["w0"] * float(np.sum(gramian(solution.factors) * gramian(items)))
        + solution.regularization_loss
    )
    np.testing.assert_allclose(assembled, dense, rtol=1e-5)


@pytest.mark.parametrize("rows_per_solve", [2048, 7])
def test_long_and_short_rows_share_one_block(monkeypatch, rows_per_solve):
    # Lengths from 1 to 300 exercise several padding buckets and chunking; 7 rows per
    # solve exercises the row chunks.
    monkeypatch.setattr(solver, "ROWS_PER_SOLVE", rows_per_solve)
    rng = np.random.default_rng(5)
    n, m, rank = 40, 400, 5
    lengths = np.unique(np.geomspace(1, 300, n).astype(int))
    rows = np.concatenate([np.full(k, i) for i, k in enumerate(lengths)])
    cols = np.concatenate([rng.choice(m, k, replace=False) for k in lengths])
    values = rng.normal(3, 1, len(rows))
    items = rng.standard_normal((m, rank)).astype(np.float32)
    weights = ObjectiveWeights(0.2, 0.5, 1.0)
    n = len(lengths)
    solution = solve_block(csr_of(rows, cols, values, n), items, gramian(items), weights)
    targets, w, observed = oracle.dense_problem(rows, cols, values, n, m, 0.2)
    expected = oracle.row_update(targets, w, observed, items.astype(np.float64), 0.5, 1.0)
    np.testing.assert_allclose(solution.factors, expected, rtol=1e-4, atol=1e-5)


def test_initial_factors_depend_only_on_hash():
    hashes = np.array([7, -3, 2**62, 7], dtype=np.int64)
    first = initial_factors(hashes, 8)
    np.testing.assert_array_equal(first[0], first[3])
    np.testing.assert_array_equal(first[1], initial_factors(hashes[1:2], 8)[0])
    assert not np.allclose(first[0], first[1])
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)


def test_factor_encoding_round_trips():
    factors = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_array_equal(decode_factors(encode_factors(factors), 4), factors)


def test_rows_longer_than_a_chunk_are_accumulated_in_slices(monkeypatch):
    # A chunk of 64 floats at rank 4 holds 16 entries: rows of 40 and 100 entries are long.
    monkeypatch.setattr(solver, "MAX_CHUNK_FLOATS", 64)
    rng = np.random.default_rng(9)
    n, m, rank = 6, 120, 4
    lengths = [3, 40, 1, 100, 16, 17]
    rows = np.concatenate([np.full(k, i) for i, k in enumerate(lengths)])
    cols = np.concatenate([rng.choice(m, k, replace=False) for k in lengths])
    values = rng.normal(3, 1, len(rows))
    items = rng.standard_normal((m, rank)).astype(np.float32)
    solution = solve_block(
        csr_of(rows, cols, values, n), items, gramian(items), ObjectiveWeights(0.1, 0.2, 1.0)
    )
    targets, w, observed = oracle.dense_problem(rows, cols, values, n, m, 0.1)
    expected = oracle.row_update(targets, w, observed, items.astype(np.float64), 0.2, 1.0)
    np.testing.assert_allclose(solution.factors, expected, rtol=1e-4, atol=1e-5)


def test_per_entry_confidences_weight_the_observations():
    rows, cols, values, n, m = random_problem(6)
    rank = 3
    confidences = np.random.default_rng(7).uniform(0.5, 3.0, len(rows))
    items = np.random.default_rng(8).standard_normal((m, rank)).astype(np.float32)
    block = csr_of(rows, cols, values, n)
    order = np.lexsort((cols, rows))
    block = CsrBlock(block.indptr, block.cols, block.targets, confidences[order].astype(np.float32))
    weights = ObjectiveWeights(0.2, 0.1, 0.0, row_weight=2.0, col_weight=0.5)
    solution = solve_block(block, items, gramian(items), weights)
    targets, w, observed = oracle.dense_problem(rows, cols, values, n, m, 0.2)
    w[rows, cols] = 0.2 + 2.0 * 0.5 * confidences
    expected = oracle.row_update(targets, w, observed, items.astype(np.float64), 0.1, 0.0)
    np.testing.assert_allclose(solution.factors, expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ conjugate gradient


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_cg_with_rank_steps_reaches_the_exact_solution(name):
    s = SETTINGS[name]
    rows, cols, values, n, m = random_problem(5)
    rank = 4
    items = np.random.default_rng(6).standard_normal((m, rank)).astype(np.float32)
    weights = ObjectiveWeights(
        s["w0"], s["lam"], s["nu"], s.get("row_weight", 1.0), s.get("col_weight", 1.0)
    )
    block = csr_of(rows, cols, values, n)
    exact = solve_block(block, items, gramian(items), weights)
    start = np.random.default_rng(7).standard_normal((n, rank)).astype(np.float32)
    # k steps of CG solve a k x k system exactly (up to rounding); a few more absorb it.
    cg = solver.solve_block_cg(block, items, gramian(items), weights, start, steps=2 * rank)
    np.testing.assert_allclose(cg.factors, exact.factors, rtol=1e-4, atol=1e-5)
    assert cg.observed_loss == pytest.approx(exact.observed_loss, rel=1e-5)
    assert cg.regularization_loss == pytest.approx(exact.regularization_loss, rel=1e-5)
    assert np.all(cg.factors[3] == 0.0)


def test_cg_steps_reduce_the_error_and_chunks_do_not_matter(monkeypatch):
    rows, cols, values, n, m = random_problem(8, n=40, m=30, density=0.5)
    rank = 8
    items = np.random.default_rng(9).standard_normal((m, rank)).astype(np.float32)
    weights = ObjectiveWeights(1.0, 0.1, 1.0)
    block = csr_of(rows, cols, values, n)
    exact = solve_block(block, items, gramian(items), weights).factors
    start = np.zeros((n, rank), dtype=np.float32)
    errors = [
        np.abs(
            solver.solve_block_cg(block, items, gramian(items), weights, start, steps).factors
            - exact
        ).max()
        for steps in (1, 3, 6)
    ]
    assert errors[0] > errors[1] > errors[2]
    whole = solver.solve_block_cg(block, items, gramian(items), weights, start, 3).factors
    # Every row (at most m = 30 entries x rank 8) fits a chunk, which holds only 1-2 rows.
    monkeypatch.setattr(solver, "MAX_CHUNK_FLOATS", 240)
    chunked = solver.solve_block_cg(block, items, gramian(items), weights, start, 3).factors
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)


def test_cg_solves_rows_longer_than_a_chunk_exactly(monkeypatch):
    rows, cols, values, n, m = random_problem(10, n=20, m=30, density=0.5)
    rank = 4
    items = np.random.default_rng(11).standard_normal((m, rank)).astype(np.float32)
    weights = ObjectiveWeights(0.5, 0.1, 1.0)
    block = csr_of(rows, cols, values, n)
    exact = solve_block(block, items, gramian(items), weights)
    start = np.zeros((n, rank), dtype=np.float32)
    # Every row is longer than a chunk of 8 floats: all are solved exactly, in slices.
    monkeypatch.setattr(solver, "MAX_CHUNK_FLOATS", 8)
    cg = solver.solve_block_cg(block, items, gramian(items), weights, start, steps=1)
    np.testing.assert_allclose(cg.factors, exact.factors, rtol=1e-4, atol=1e-5)
    assert cg.observed_loss == pytest.approx(exact.observed_loss, rel=1e-6)


@pytest.mark.parametrize("method", ["exact", "cg"])
def test_a_very_heavy_row_keeps_memory_bounded_by_the_chunk(method):
    """A row holding most of a block's entries (a power user, a blockbuster item) is
    accumulated slice by slice: the solve's extra memory grows with the block's entries
    by a few numbers each, not by a padded (row x length x rank) copy of the row."""
    import tracemalloc

    rank, heavy = 64, 300_000
    rng = np.random.default_rng(5)
    m = 50_000
    items = rng.standard_normal((m, rank)).astype(np.float32)
    light_rows = np.repeat(np.arange(1, 201), 5)
    rows = np.concatenate([np.zeros(heavy, dtype=np.int64), light_rows])
    cols = np.concatenate([rng.integers(0, m, heavy), rng.integers(0, m, len(light_rows))]).astype(
        np.int64
    )
    values = rng.integers(1, 6, len(rows)).astype(np.float64)
    block = csr_of(rows, cols, values, 201)
    weights = ObjectiveWeights(0.1, 0.1, 1.0)
    gram = gramian(items)
    start = np.zeros((201, rank), dtype=np.float32)
    tracemalloc.start()
    if method == "exact":
        solution = solve_block(block, items, gram, weights)
    else:
        solution = solver.solve_block_cg(block, items, gram, weights, start, 3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    nnz = len(rows)
    # A padded copy of the heavy row alone would take heavy * rank * 4 = 77 MB; the bound
    # allows the per-entry arrays of the block (weights, row of each entry: ~40 bytes per
    # entry), two copies of the routed factors and a few chunks.
    bound = 40 * nnz + 2 * items.nbytes + 8 * solver.MAX_CHUNK_FLOATS * 4
    assert peak < bound, (peak, bound)
    assert np.all(np.isfinite(solution.factors)) and np.any(solution.factors[0] != 0)


def test_rows_per_solve_bounds_the_stack_of_systems():
    from walsspark.solver import MAX_RANK, MAX_SOLVE_STACK_BYTES, ROWS_PER_SOLVE, rows_per_solve

    assert rows_per_solve(8) == ROWS_PER_SOLVE
    for rank in (64, 100, 512, 2000, MAX_RANK):
        rows = rows_per_solve(rank)
        assert rows >= 1
        assert rows == 1 or rows * rank * rank * 8 <= MAX_SOLVE_STACK_BYTES
