"""Tests of walsspark.topk against an independent brute-force reference (no Spark)."""

from __future__ import annotations

import numpy as np
import pytest

from walsspark.topk import top_k


def reference(query, candidates, k, excluded=None):
    """Brute force: score every pair in float64, sort with Python by (-score, index)."""
    q = np.asarray(query, dtype=np.float64)
    c = np.asarray(candidates, dtype=np.float64)
    n, m = q.shape[0], c.shape[0]
    kk = min(k, m)
    idx = np.full((n, kk), -1, dtype=np.int64)
    sc = np.full((n, kk), np.nan)
    counts = np.zeros(n, dtype=np.int64)
    for i in range(n):
        banned = set() if excluded is None else set(int(j) for j in excluded[i])
        pairs = [(-float(q[i] @ c[j]), j) for j in range(m) if j not in banned]
        pairs.sort()
        best = pairs[:k]
        counts[i] = len(best)
        for p, (neg, j) in enumerate(best):
            idx[i, p] = j
            sc[i, p] = -neg
    return idx, sc, counts


def to_csr(excluded):
    """Per-row lists of excluded candidates -> (indptr int32, cols int32)."""
    lengths = [len(e) for e in excluded]
    indptr = np.zeros(len(excluded) + 1, dtype=np.int32)
    indptr[1:] = np.cumsum(lengths)
    cols = np.array([j for e in excluded for j in e], dtype=np.int32)
    return indptr, cols


def random_exclusions(rng, n, m, full_rows=()):
    """Unsorted per-row exclusions with duplicates; rows in full_rows exclude everything."""
    excluded = []
    for i in range(n):
        if i in full_rows:
            e = list(rng.permutation(m)) + list(rng.integers(0, m, size=3))
        else:
            size = int(rng.integers(0, m + 1))
            e = list(rng.integers(0, m, size=size))  # with replacement: duplicates
        rng.shuffle(e)
        excluded.append([int(j) for j in e])
    return excluded


def assert_matches(got, want):
    idx, sc, cnt = got
    ridx, rsc, rcnt = want
    assert idx.dtype == np.int32
    assert sc.dtype == np.float32
    assert cnt.dtype == np.int64
    assert idx.shape == ridx.shape and sc.shape == rsc.shape and cnt.shape == rcnt.shape
    np.testing.assert_array_equal(cnt, rcnt)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_allclose(sc, rsc, rtol=1e-5, atol=1e-5, equal_nan=True)
    # padding layout
    pos = np.arange(idx.shape[1])[None, :]
    pad = pos >= cnt[:, None]
    assert np.all(idx[pad] == -1)
    assert np.all(np.isnan(sc[pad]))
    assert not np.any(np.isnan(sc[~pad]))


def dyadic(rng, shape, low=-3, high=4):
    """Small integers: every dot product is exact in float32, so ties are exact."""
    return rng.integers(low, high, size=shape).astype(np.float32)


CASES = [
    # n, m, r, k
    (1, 1, 1, 1),
    (7, 5, 3, 2),
    (10, 20, 4, 5),
    (13, 8, 2, 8),  # k == m
    (9, 6, 3, 10),  # k > m
    (25, 40, 6, 1),
    (30, 50, 5, 17),
]


@pytest.mark.parametrize("n,m,r,k", CASES)
@pytest.mark.parametrize("chunk_rows", [1, 3, 4096])
def test_continuous_no_exclusion(n, m, r, k, chunk_rows):
    rng = np.random.default_rng(1000 * n + 10 * m + k)
    q = rng.standard_normal((n, r)).astype(np.float32)
    c = rng.standard_normal((m, r)).astype(np.float32)
    assert_matches(top_k(q, c, k, chunk_rows=chunk_rows), reference(q, c, k))


@pytest.mark.parametrize("n,m,r,k", CASES)
@pytest.mark.parametrize("chunk_rows", [1, 3, 4096])
def test_continuous_with_exclusion(n, m, r, k, chunk_rows):
    rng = np.random.default_rng(7 + 1000 * n + 10 * m + k)
    q = rng.standard_normal((n, r)).astype(np.float32)
    c = rng.standard_normal((m, r)).astype(np.float32)
    excluded = random_exclusions(rng, n, m, full_rows={0, n // 2})
    indptr, cols = to_csr(excluded)
    got = top_k(q, c, k, indptr, cols, chunk_rows=chunk_rows)
    assert_matches(got, reference(q, c, k, excluded))
    assert got[2][0] == 0 and got[2][n // 2] == 0  # everything excluded


@pytest.mark.parametrize("n,m,r,k", CASES + [(40, 60, 2, 7), (40, 60, 1, 30), (20, 100, 1, 3)])
@pytest.mark.parametrize("chunk_rows", [3, 4096])
@pytest.mark.parametrize("with_exclusion", [False, True])
def test_heavy_ties(n, m, r, k, chunk_rows, with_exclusion):
    rng = np.random.default_rng(99 + 1000 * n + 10 * m + k + r)
    q = dyadic(rng, (n, r))
    c = dyadic(rng, (m, r))
    excluded = random_exclusions(rng, n, m, full_rows={1}) if with_exclusion else None
    if with_exclusion:
        indptr, cols = to_csr(excluded)
        got = top_k(q, c, k, indptr, cols, chunk_rows=chunk_rows)
    else:
        got = top_k(q, c, k, chunk_rows=chunk_rows)
    assert_matches(got, reference(q, c, k, excluded))


def test_ties_straddle_boundary_prefer_smaller_index():
    # All 10 candidates have score 1 except candidate 7 (score 2): top-3 must be 7, 0, 1,
    # whatever subset of the tied entries argpartition happens to keep.
    q = np.ones((4, 1), dtype=np.float32)
    c = np.ones((10, 1), dtype=np.float32)
    c[7] = 2.0
    idx, sc, cnt = top_k(q, c, 3, chunk_rows=2)
    np.testing.assert_array_equal(idx, np.tile([7, 0, 1], (4, 1)))
    np.testing.assert_array_equal(sc, np.tile(np.float32([2, 1, 1]), (4, 1)))
    np.testing.assert_array_equal(cnt, [3, 3, 3, 3])


def test_all_equal_scores_large_m():
    # Many exact ties at the boundary of a large row (argpartition is free to pick any).
    rng = np.random.default_rng(5)
    m = 5000
    q = np.ones((3, 2), dtype=np.float32)
    c = np.zeros((m, 2), dtype=np.float32)
    c[rng.choice(m, size=50, replace=False), 0] = 1.0
    idx, _, _ = top_k(q, c, 80)
    ridx, _, _ = reference(q, c, 80)
    np.testing.assert_array_equal(idx, ridx)


def test_chunking_is_exact():
    rng = np.random.default_rng(3)
    q = dyadic(rng, (37, 3))
    c = dyadic(rng, (23, 3))
    excluded = random_exclusions(rng, 37, 23, full_rows={36})
    indptr, cols = to_csr(excluded)
    base = top_k(q, c, 6, indptr, cols, chunk_rows=10_000)
    for chunk_rows in (1, 2, 5, 36, 37):
        got = top_k(q, c, 6, indptr, cols, chunk_rows=chunk_rows)
        for a, b in zip(got, base, strict=True):
            np.testing.assert_array_equal(a, b)


def test_partial_exclusion_counts_and_padding():
    q = np.array([[1.0], [1.0], [1.0]], dtype=np.float32)
    c = np.array([[3.0], [1.0], [2.0], [0.0]], dtype=np.float32)
    # row 0: exclude 0 (twice) and 2 -> 2 left; row 1: nothing; row 2: all 4 (with a duplicate)
    indptr = np.array([0, 3, 3, 8], dtype=np.int32)
    cols = np.array([0, 2, 0, 3, 1, 3, 0, 2], dtype=np.int32)
    idx, sc, cnt = top_k(q, c, 3, indptr, cols)
    np.testing.assert_array_equal(cnt, [2, 3, 0])
    np.testing.assert_array_equal(idx, [[1, 3, -1], [0, 2, 1], [-1, -1, -1]])
    np.testing.assert_array_equal(sc[:2, :2], [[1.0, 0.0], [3.0, 2.0]])
    assert np.isnan(sc[0, 2]) and np.isnan(sc[2]).all()
    assert sc[1, 2] == 1.0


def test_empty_inputs():
    c = np.ones((4, 2), dtype=np.float32)
    idx, sc, cnt = top_k(np.zeros((0, 2), dtype=np.float32), c, 3)
    assert idx.shape == (0, 3) and sc.shape == (0, 3) and cnt.shape == (0,)
    idx, sc, cnt = top_k(np.ones((2, 2), dtype=np.float32), np.zeros((0, 2), np.float32), 3)
    assert idx.shape == (2, 0) and sc.shape == (2, 0)
    np.testing.assert_array_equal(cnt, [0, 0])


@pytest.mark.parametrize("k", [0, -1])
def test_bad_k(k):
    q = np.ones((2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="k must be"):
        top_k(q, q, k)


@pytest.mark.parametrize("bad_col", [-1, 5, 100])
def test_out_of_range_exclusion(bad_col):
    q = np.ones((2, 2), dtype=np.float32)
    c = np.ones((5, 2), dtype=np.float32)
    indptr = np.array([0, 1, 2], dtype=np.int32)
    cols = np.array([1, bad_col], dtype=np.int32)
    with pytest.raises(ValueError, match="exclude_cols"):
        top_k(q, c, 2, indptr, cols)


def test_other_bad_inputs():
    q = np.ones((2, 2), dtype=np.float32)
    c = np.ones((5, 2), dtype=np.float32)
    cols = np.array([1, 2], dtype=np.int32)
    with pytest.raises(ValueError):
        top_k(q, c, 2, np.array([0, 1, 2], dtype=np.int32), None)
    with pytest.raises(ValueError):
        top_k(q, c, 2, np.array([0, 2], dtype=np.int32), cols)  # wrong length
    with pytest.raises(ValueError):
        top_k(q, c, 2, np.array([0, 2, 1], dtype=np.int32), cols[:1])  # decreasing
    with pytest.raises(ValueError):
        top_k(q, c, 2, np.array([0, 1, 3], dtype=np.int32), cols)  # end != len(cols)
    with pytest.raises(ValueError):
        top_k(q, np.ones((5, 3), dtype=np.float32), 2)  # rank mismatch
    with pytest.raises(ValueError):
        top_k(q, c, 2, chunk_rows=0)
    bad = c.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        top_k(q, bad, 2)
