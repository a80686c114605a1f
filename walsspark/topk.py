"""Exact top-k retrieval by dot product (numpy only, no Spark).

Given query factors ``Q`` (n x r) and candidate factors ``C`` (m x r), the score of candidate
``j`` for query ``i`` is ``Q[i] . C[j]``. :func:`top_k` returns, per query, the ``k`` best
candidates in descending score order with ties broken by the smaller candidate index, optionally
excluding a per-query set of candidates given in CSR form (typically the items a user has
already rated).

Algorithm
---------
Query rows are processed in chunks of ``chunk_rows``. Per chunk one float32 GEMM computes the
(negated) score block, excluded entries are set to ``+inf`` (i.e. score ``-inf``) with one
vectorized fancy-index assignment, and ``np.argpartition`` selects the ``kk = min(k, m)``
best entries of each row in O(m). ``argpartition`` may pick an arbitrary subset of several
entries tied at the k-th place, so the rows where ties straddle the boundary are recomputed:
every entry strictly better than the k-th value is kept, and the remaining places go to the
tied entries with the smallest indices. The ``kk`` selected entries are finally ordered by
(-score, index). Memory is O(chunk_rows * m); there is no Python loop per query row.
"""

from __future__ import annotations

import numpy as np

__all__ = ["top_k"]


def _validate_exclusion(
    exclude_indptr: np.ndarray | None,
    exclude_cols: np.ndarray | None,
    n: int,
    m: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Check the CSR exclusion arrays and return them as int64 / intp arrays.

    Parameters
    ----------
    exclude_indptr : numpy.ndarray or None
        Row pointer of length ``n + 1``.
    exclude_cols : numpy.ndarray or None
        Excluded candidate indices, ``exclude_indptr[-1]`` of them.
    n : int
        Number of queries.
    m : int
        Number of candidates.

    Returns
    -------
    tuple of numpy.ndarray or None
        ``(indptr, cols)`` or ``None`` when there is no exclusion.

    Raises
    ------
    ValueError
        If only one of the arrays is given, or they are not a valid CSR structure over
        ``n`` rows with column indices in ``[0, m)``.
    """
    if exclude_indptr is None and exclude_cols is None:
        return None
    if exclude_indptr is None or exclude_cols is None:
        raise ValueError("exclude_indptr and exclude_cols must be given together")
    indptr = np.asarray(exclude_indptr)
    cols = np.asarray(exclude_cols)
    for name, arr in (("exclude_indptr", indptr), ("exclude_cols", cols)):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    indptr = indptr.astype(np.int64, copy=False)
    cols = cols.astype(np.intp, copy=False)
    if indptr.shape[0] != n + 1:
        raise ValueError(f"exclude_indptr must have length n + 1 = {n + 1}, got {indptr.shape[0]}")
    if indptr[0] != 0 or indptr[-1] != cols.shape[0]:
        raise ValueError(
            f"exclude_indptr must start at 0 and end at len(exclude_cols) = {cols.shape[0]}, "
            f"got {indptr[0]} .. {indptr[-1]}"
        )
    if np.any(np.diff(indptr) < 0):
        raise ValueError("exclude_indptr must be non-decreasing")
    if cols.size and (cols.min() < 0 or cols.max() >= m):
        raise ValueError(
            f"exclude_cols must lie in [0, {m}), got range [{cols.min()}, {cols.max()}]"
        )
    return indptr, cols


def top_k(
    query: np.ndarray,
    candidates: np.ndarray,
    k: int,
    exclude_indptr: np.ndarray | None = None,
    exclude_cols: np.ndarray | None = None,
    chunk_rows: int = 2048,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the ``k`` highest-scoring candidates of every query by dot product.

    Parameters
    ----------
    query : numpy.ndarray
        (n, r) factors of the queries; converted to float32.
    candidates : numpy.ndarray
        (m, r) factors of the ranked side; converted to float32. The score of candidate ``j``
        for query ``i`` is ``query[i] . candidates[j]``.
    k : int
        Number of candidates to return per query, ``k >= 1``.
    exclude_indptr : numpy.ndarray, optional
        CSR row pointer (length ``n + 1``) of the excluded candidates; must be given together
        with `exclude_cols`.
    exclude_cols : numpy.ndarray, optional
        Candidate indices to exclude: those of query ``i`` are
        ``exclude_cols[exclude_indptr[i]:exclude_indptr[i + 1]]``. They may be unsorted and
        contain duplicates, but must lie in ``[0, m)``.
    chunk_rows : int, default 2048
        Number of query rows scored per matrix multiply; bounds the working memory to
        O(chunk_rows * m).

    Returns
    -------
    indices : numpy.ndarray
        (n, kk) int32 with ``kk = min(k, m)``: candidate indices of each row in descending
        score order, ties broken by the smaller index; padded with -1 past ``counts[i]``.
    scores : numpy.ndarray
        (n, kk) float32 scores matching `indices`; padded with NaN past ``counts[i]``.
    counts : numpy.ndarray
        (n,) int64: ``min(k, m - d_i)`` with ``d_i`` the number of distinct excluded
        candidates of query ``i``.

    Raises
    ------
    ValueError
        If ``k < 1`` or ``chunk_rows < 1``, the factor matrices are not two-dimensional with the
        same rank, contain non-finite values or give non-finite scores, or the exclusion arrays
        are invalid (see `exclude_cols`).

    Examples
    --------
    >>> q = np.array([[1.0, 0.0]], dtype=np.float32)
    >>> c = np.array([[1.0, 0.0], [2.0, 0.0], [1.0, 5.0]], dtype=np.float32)
    >>> idx, sc, cnt = top_k(q, c, 2)
    >>> idx.tolist(), sc.tolist(), cnt.tolist()
    ([[1, 0]], [[2.0, 1.0]], [2])
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int | np.integer):
        raise ValueError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}")
    Q = np.asarray(query, dtype=np.float32)
    C = np.asarray(candidates, dtype=np.float32)
    if Q.ndim != 2 or C.ndim != 2:
        raise ValueError(f"query and candidates must be 2-D, got shapes {Q.shape} and {C.shape}")
    if Q.shape[1] != C.shape[1]:
        raise ValueError(f"rank mismatch: query has {Q.shape[1]}, candidates {C.shape[1]}")
    if not (np.isfinite(Q).all() and np.isfinite(C).all()):
        raise ValueError("query and candidates must be finite")
    n, m = Q.shape[0], C.shape[0]
    excl = _validate_exclusion(exclude_indptr, exclude_cols, n, m)
    k = int(k)
    chunk_rows = int(chunk_rows)
    kk = min(k, m)

    out_idx = np.full((n, kk), -1, dtype=np.int32)
    out_scores = np.full((n, kk), np.nan, dtype=np.float32)
    counts = np.zeros(n, dtype=np.int64)
    if kk == 0 or n == 0:
        return out_idx, out_scores, counts

    CT = np.ascontiguousarray(C.T)
    pos = np.arange(kk)
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        b = stop - start
        rows = np.arange(b)
        # Negated scores: "smaller is better", excluded entries become +inf.
        neg = Q[start:stop] @ CT
        np.negative(neg, out=neg)
        if not np.isfinite(neg).all():
            raise ValueError("non-finite scores (float32 overflow of query . candidate)")

        n_excluded = np.zeros(b, dtype=np.int64)
        if excl is not None:
            indptr, cols = excl
            lo, hi = indptr[start], indptr[stop]
            if hi > lo:
                ex_cols = cols[lo:hi]
                ex_rows = np.repeat(rows, np.diff(indptr[start : stop + 1]))
                neg[ex_rows, ex_cols] = np.inf
                # Scores were checked finite above, so the infinities are exactly the
                # distinct excluded entries (duplicates land on the same cell): one pass
                # over the chunk, much cheaper than hashing the exclusion pairs.
                n_excluded = np.isinf(neg).sum(axis=1, dtype=np.int64)
        cnt = np.minimum(kk, m - n_excluded)

        if kk == m:
            sel = np.broadcast_to(np.arange(m), (b, m))
        else:
            sel = np.argpartition(neg, kk - 1, axis=1)[:, :kk]
            # kk-th smallest negated score of each row (argpartition places it at kk - 1).
            thr = neg[rows, sel[:, kk - 1]]
            # Rows where entries tied with the threshold straddle the boundary: the subset of
            # tied entries argpartition kept is arbitrary. A threshold of +inf means the row has
            # fewer than kk admissible entries, all of which are already selected.
            n_le = np.count_nonzero(neg <= thr[:, None], axis=1)
            fix = np.flatnonzero((n_le > kk) & np.isfinite(thr))
            if fix.size:
                sub = neg[fix]
                t = thr[fix, None]
                better = sub < t
                tied = sub == t
                need = kk - np.count_nonzero(better, axis=1)
                keep = better | (tied & (np.cumsum(tied, axis=1) <= need[:, None]))
                sel = sel.copy()
                sel[fix] = np.nonzero(keep)[1].reshape(fix.size, kk)

        # Order the kk selected entries by (negated score, index): sort by index first, then
        # a stable sort by score.
        sel = np.sort(sel, axis=1)
        vals = np.take_along_axis(neg, sel, axis=1)
        order = np.argsort(vals, axis=1, kind="stable")
        sel = np.take_along_axis(sel, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)

        valid = pos[None, :] < cnt[:, None]
        out_idx[start:stop] = np.where(valid, sel, -1)
        out_scores[start:stop] = np.where(valid, -vals, np.float32(np.nan))
        counts[start:stop] = cnt
    return out_idx, out_scores, counts
