"""Block solvers of the WALS objective (numpy only, no Spark).

The objective
-------------
Observed entries S with targets a_ij, rows i (n of them) and columns j (m of them)::

    L = sum_S W_ij (a_ij - u_i.v_j)^2 + sum_{not S} w0_ij (u_i.v_j)^2
        + sum_i lambda_i |u_i|^2 + sum_j lambda_j |v_j|^2

    w0_ij    = w0 * s_i * t_j               (w0: unobserved weight; s, t: popularity scales)
    W_ij     = w0_ij + R_i * C_j * c_ij     (R, C: row/column weights; c: entry confidence)
    lambda_i = lambda * (n_i + o) ** nu     (n_i: number of observed entries of row i)
    s_i      = n_i ** e_row / mean_i'(n_i' ** e_row),   t_j likewise with m_j and e_col

s and t are 1 unless the unobserved weights follow popularity (eALS, He et al. 2016: an
item rated often is more surely a negative when unrated); normalized so that the mean
unobserved weight stays w0. The offset o (0 by default) lets lambda_i follow a row's total
weight rather than its count alone (Rendle et al. 2022: lambda (n_i + w0 m) ** nu).

With V fixed and G_t = sum_j t_j v_j v_j^T over *all* m columns (the plain Gramian V^T V
when t = 1), the row update is the normal equation::

    (w0 s_i G_t + lambda_i I + sum_{j in S_i} R_i C_j c_ij v_j v_j^T) u_i
        = sum_{j in S_i} W_ij a_ij v_j

since W_ij - w0_ij = R_i C_j c_ij: the observed correction does not depend on s and t, and
a row costs the same whether they are 1 or not. A row with no observations gets u_i = 0.
The column update is the same with U and V swapped, so every function here speaks of
"rows" being solved against a fixed "other side".

Layout of a block
-----------------
A block holds the observations of some rows in CSR form: ``indptr`` (n_rows + 1), ``cols``
(indices into the *local* other-side matrix that was routed to the block, not global ids) and
``values``/``weights`` per entry. The fixed factors arrive as one dense float32 matrix holding
only the rows this block needs.

Vectorization
-------------
The sum of outer products is the expensive part (nnz * k^2). Rows are grouped into buckets of
similar length, each bucket padded to its longest row (at most 25% padding for rows of 4 or
more entries with the geometric bucket bounds below, up to 50% for the shortest rows) and
multiplied with one stacked ``np.matmul``, which calls a BLAS GEMM per row in C: no Python
loop per row. Rows too long for one chunk are accumulated slice by slice. The k x k
systems are solved with one batched LAPACK call (see :func:`solve_spd_batch`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Growth factor between consecutive bucket lengths: bounds the padding waste to 25%.
BUCKET_GROWTH = 1.25
# Upper bound on the floats of one padded (rows x length x rank) chunk: bounds task memory
# (1 MiB of float32: small chunks stay in cache; measured faster than 4-64 MiB ones).
MAX_CHUNK_FLOATS = 262144
# Rows assembled and solved together: bounds the float64 k x k stack (2048 x 64 x 64 x 8 B
# = 64 MiB at rank 64) independently of the block size.
ROWS_PER_SOLVE = 2048
# ... and at most this many bytes of that stack, so that a large rank solves fewer rows at
# a time instead of allocating more (2048 rows up to rank 64; one row at rank 2896).
MAX_SOLVE_STACK_BYTES = 64 * 1024 * 1024
# The largest rank a solve accepts: one k x k float64 system is 128 MiB at 4096, and a task
# holds a few (the stack, LAPACK's copy, the Gramian). WALSParams refuses larger ranks.
MAX_RANK = 4096


def rows_per_solve(rank: int) -> int:
    """Rows whose k x k systems are assembled and solved together at ``rank``."""
    return max(1, min(ROWS_PER_SOLVE, MAX_SOLVE_STACK_BYTES // (rank * rank * 8)))


@dataclass(frozen=True)
class ObjectiveWeights:
    """The weights of the objective seen from the side being solved.

    Attributes
    ----------
    unobserved_weight : float
        w0, the weight of every unobserved entry.
    regularization : float
        lambda.
    reg_exponent : float
        nu in lambda_i = lambda * (n_i + o) ** nu (0: constant, as TF WALS; 1: ALS-WR, as
        MLlib).
    row_weight : float
        R, the (scalar) weight of the rows being solved.
    col_weight : float
        C, the (scalar) weight of the fixed side.
    row_unobserved_exponent, col_unobserved_exponent : float
        e_row, e_col of the popularity scales s_i and t_j (0: every scale is 1).
    row_unobserved_norm, col_unobserved_norm : float
        mean(n ** e) over the ids of each side: divides n ** e so that the scales average 1.
    reg_offset : float
        o, added to every observed row's count before the exponent (0: lambda n_i ** nu).
        Rendle et al. (RecSys 2022) scale lambda by a row's total weight, n_i + w0 m in
        their parameterization, which this offset expresses.
    """

    unobserved_weight: float
    regularization: float
    reg_exponent: float = 0.0
    row_weight: float = 1.0
    col_weight: float = 1.0
    row_unobserved_exponent: float = 0.0
    col_unobserved_exponent: float = 0.0
    row_unobserved_norm: float = 1.0
    col_unobserved_norm: float = 1.0
    # Last, so that the positional order of the fields above stays as it was.
    reg_offset: float = 0.0

    def swapped(self) -> ObjectiveWeights:
        """The same objective seen from the other side (row and column weights swap)."""
        return ObjectiveWeights(
            self.unobserved_weight,
            self.regularization,
            self.reg_exponent,
            self.col_weight,
            self.row_weight,
            self.col_unobserved_exponent,
            self.row_unobserved_exponent,
            self.col_unobserved_norm,
            self.row_unobserved_norm,
            self.reg_offset,
        )

    @property
    def popularity_scaled(self) -> bool:
        """True when the unobserved weights vary with popularity on either side."""
        return self.row_unobserved_exponent != 0 or self.col_unobserved_exponent != 0


@dataclass(frozen=True)
class CsrBlock:
    """Observations of a block of rows against a routed, block-local other side.

    Attributes
    ----------
    indptr : ndarray of int64, shape (n_rows + 1,)
    cols : ndarray of int32, shape (nnz,)
        Row indices into the routed other-side factor matrix.
    targets : ndarray of float32, shape (nnz,)
        a_ij.
    confidences : ndarray of float32, shape (nnz,), optional
        c_ij; ``None`` means 1 for every entry.
    other_counts : ndarray of float32, shape (nnz,), optional
        m_j, the training frequency of each entry's column; needed when the column
        popularity scales t_j are not all 1.
    """

    indptr: np.ndarray
    cols: np.ndarray
    targets: np.ndarray
    confidences: np.ndarray | None = None
    other_counts: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)


def gramian(factors: np.ndarray) -> np.ndarray:
    """Return F^T F in float64 (the k x k Gramian of a factor block)."""
    f64 = factors.astype(np.float64, copy=False)
    return f64.T @ f64


def weighted_gramian(factors: np.ndarray, scales: np.ndarray | None) -> np.ndarray:
    """Return sum_r scales_r f_r f_r^T in float64 (:func:`gramian` when ``scales`` is None)."""
    if scales is None:
        return gramian(factors)
    f64 = factors.astype(np.float64, copy=False)
    return f64.T @ (f64 * scales[:, None])


def popularity_scales(counts: np.ndarray, exponent: float, norm: float) -> np.ndarray | None:
    """n ** e / norm per id (float64), 0 for ids without observations; None when e = 0."""
    if exponent == 0:
        return None
    counts64 = counts.astype(np.float64)
    return np.where(counts64 > 0, counts64**exponent, 0.0) / norm


def row_unobserved_scales(
    block: CsrBlock, weights: ObjectiveWeights, row_counts: np.ndarray | None = None
) -> np.ndarray | None:
    """s_i of every row of the block (None when they are all 1).

    ``row_counts`` are the rows' training frequencies when the block's own row lengths are
    not (a block of held-out pairs).
    """
    counts = block.counts if row_counts is None else row_counts
    return popularity_scales(counts, weights.row_unobserved_exponent, weights.row_unobserved_norm)


def entry_unobserved_scales(
    block: CsrBlock, weights: ObjectiveWeights, row_counts: np.ndarray | None = None
) -> np.ndarray | None:
    """s_i t_j of every observed entry of the block (float32; None when all are 1)."""
    if not weights.popularity_scaled:
        return None
    scales = np.ones(len(block.cols), dtype=np.float64)
    rows = row_unobserved_scales(block, weights, row_counts)
    if rows is not None:
        scales *= np.repeat(rows, block.counts)
    if weights.col_unobserved_exponent != 0:
        if block.other_counts is None:
            raise ValueError("column popularity scales need the block's other_counts")
        scales *= popularity_scales(
            block.other_counts, weights.col_unobserved_exponent, weights.col_unobserved_norm
        )
    return scales.astype(np.float32)


def observed_excess(block: CsrBlock, weights: ObjectiveWeights) -> np.ndarray:
    """W_ij - w0_ij = R * C * c_ij for every observed entry of the block (float32)."""
    scale = np.float32(weights.row_weight * weights.col_weight)
    if block.confidences is None:
        return np.full(len(block.cols), scale, dtype=np.float32)
    return scale * block.confidences.astype(np.float32, copy=False)


def observed_weights(
    block: CsrBlock, weights: ObjectiveWeights, row_counts: np.ndarray | None = None
) -> np.ndarray:
    """W_ij = w0 s_i t_j + R * C * c_ij for every observed entry of the block (float32).

    ``row_counts``: as :func:`row_unobserved_scales`.
    """
    w0 = np.float32(weights.unobserved_weight)
    scales = entry_unobserved_scales(block, weights, row_counts)
    unobserved = w0 if scales is None else w0 * scales
    return observed_excess(block, weights) + unobserved


def row_regularization(counts: np.ndarray, weights: ObjectiveWeights) -> np.ndarray:
    """lambda_i = lambda * (n_i + o) ** nu per row (float64); 0 for rows without observations."""
    counts64 = counts.astype(np.float64) + weights.reg_offset
    if weights.reg_exponent == 0.0:
        reg = np.full(len(counts), weights.regularization, dtype=np.float64)
    else:
        reg = weights.regularization * counts64**weights.reg_exponent
    return np.where(counts > 0, reg, 0.0)


def _length_buckets(counts: np.ndarray) -> list[np.ndarray]:
    """Group positions with observations (counts > 0) into buckets of similar length."""
    order = np.argsort(counts, kind="stable")
    sorted_counts = counts[order]
    start = np.searchsorted(sorted_counts, 1)
    buckets = []
    while start < len(order):
        limit = max(sorted_counts[start] * BUCKET_GROWTH, sorted_counts[start] + 1)
        stop = np.searchsorted(sorted_counts, limit, side="right")
        buckets.append(order[start:stop])
        start = stop
    return buckets


@dataclass(frozen=True)
class NormalEquations:
    """The data-dependent parts of the normal equations of some rows of a block.

    Attributes
    ----------
    observed_gram : ndarray of float64, shape (n_rows, k, k)
        M_i = sum_{j in S_i} (W_ij - w0_ij) v_j v_j^T (accumulated in float32).
    rhs : ndarray of float64, shape (n_rows, k)
        b_i = sum_{j in S_i} W_ij a_ij v_j.
    """

    observed_gram: np.ndarray
    rhs: np.ndarray


@dataclass(frozen=True)
class BlockOperands:
    """What every chunk of a block solve reads, prepared once per block.

    Attributes
    ----------
    other_padded : ndarray of float32, shape (n_routed + 1, k)
        The routed factors and one zero row after them, at which padding entries point.
    w_obs : ndarray of float32, shape (nnz,)
        W_ij of every observed entry (:func:`observed_weights`).
    excess : ndarray of float32, shape (nnz,)
        W_ij - w0_ij of every observed entry (:func:`observed_excess`).
    constant_excess : float or None
        W_ij - w0_ij when it is the same for every entry (then the k x k products are
        scaled once instead of weighing every entry).
    row_scales : ndarray of float64, shape (n_rows,), or None
        s_i of every row (:func:`row_unobserved_scales`); None when all are 1.
    """

    other_padded: np.ndarray
    w_obs: np.ndarray
    excess: np.ndarray
    constant_excess: np.float32 | None
    row_scales: np.ndarray | None

    @classmethod
    def of(cls, block: CsrBlock, other: np.ndarray, weights: ObjectiveWeights) -> BlockOperands:
        """Pad ``other`` and weigh the entries: one copy of each per block, not per chunk."""
        k = other.shape[1]
        padded = np.empty((len(other) + 1, k), dtype=np.float32)
        padded[:-1] = other
        padded[-1] = 0.0
        w_obs = observed_weights(block, weights)
        excess = observed_excess(block, weights)
        constant = excess[0] if len(excess) and np.all(excess == excess[0]) else None
        return cls(padded, w_obs, excess, constant, row_unobserved_scales(block, weights))


def normal_equations(
    block: CsrBlock,
    other: np.ndarray,
    weights: ObjectiveWeights,
    rows: np.ndarray,
    operands: BlockOperands | None = None,
) -> NormalEquations:
    """Accumulate the observed Gramian and right-hand side of some rows of a block.

    Parameters
    ----------
    block : CsrBlock
        The observations of the rows being solved.
    other : ndarray of float32, shape (n_routed, k)
        The fixed side's factors routed to this block (``block.cols`` index its rows).
    weights : ObjectiveWeights
    rows : ndarray of int
        The rows to assemble (each with at least one observation).
    operands : BlockOperands, optional
        ``BlockOperands.of(block, other, weights)``, when the caller assembles a block in
        several calls (computed here otherwise).

    Returns
    -------
    NormalEquations
        In the order of ``rows``.
    """
    k = other.shape[1]
    if operands is None:
        operands = BlockOperands.of(block, other, weights)
    counts = block.counts[rows]
    w_obs, excess = operands.w_obs, operands.excess
    other_padded = operands.other_padded
    zero_row = len(other)
    constant_excess = operands.constant_excess
    # float64 storage, filled chunk by chunk from float32 products: the solve needs float64
    # and converting one cache-sized chunk at a time is much cheaper than the whole stack.
    observed_gram = np.empty((len(rows), k, k), dtype=np.float64)
    rhs = np.empty((len(rows), k), dtype=np.float64)
    long_rows = counts * k > MAX_CHUNK_FLOATS
    for position in np.flatnonzero(long_rows):
        observed_gram[position], rhs[position] = _long_row_equations(
            block, other_padded[:-1], w_obs, excess, int(rows[position]), MAX_CHUNK_FLOATS // k
        )
    for positions in _length_buckets(np.where(long_rows, 0, counts)):
        length = int(counts[positions].max())
        step = max(1, MAX_CHUNK_FLOATS // (length * k))
        offsets = np.arange(length)
        for first in range(0, len(positions), step):
            chunk = positions[first : first + step]
            chunk_rows = rows[chunk]
            valid = offsets[None, :] < counts[chunk][:, None]
            entry = np.where(valid, block.indptr[chunk_rows][:, None] + offsets[None, :], 0)
            col_index = np.where(valid, block.cols[entry], zero_row)
            w = np.where(valid, w_obs[entry], 0.0).astype(np.float32)
            a = np.where(valid, block.targets[entry], 0.0).astype(np.float32)
            factors = other_padded[col_index]  # (rows, length, k)
            if constant_excess is None:
                e = np.where(valid, excess[entry], 0.0).astype(np.float32)
                weighted = factors * e[:, :, None]
                observed_gram[chunk] = np.matmul(factors.transpose(0, 2, 1), weighted)
            else:  # one weight for every entry: scale the k x k result, not the entries
                gram = np.matmul(factors.transpose(0, 2, 1), factors)
                gram *= constant_excess
                observed_gram[chunk] = gram
            rhs[chunk] = np.matmul((w * a)[:, None, :], factors)[:, 0, :]
    return NormalEquations(observed_gram, rhs)


def _long_row_equations(
    block: CsrBlock,
    other: np.ndarray,
    w_obs: np.ndarray,
    excess: np.ndarray,
    row: int,
    step: int,
) -> tuple[np.ndarray, np.ndarray]:
    """M and b of one row too long for a padded chunk, accumulated over slices of entries.

    Keeps memory bounded by the chunk size for rows with millions of entries (a popular
    item); such rows are few (at most nnz / step), so the loop over them is short.
    """
    k = other.shape[1]
    gram = np.zeros((k, k), dtype=np.float64)
    rhs = np.zeros(k, dtype=np.float64)
    for first in range(int(block.indptr[row]), int(block.indptr[row + 1]), step):
        entries = slice(first, min(first + step, int(block.indptr[row + 1])))
        factors = other[block.cols[entries]]
        w = w_obs[entries]
        gram += factors.T @ (factors * excess[entries][:, None])
        rhs += factors.T @ (w * block.targets[entries])
    return gram, rhs


def solve_spd_batch(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a stack of symmetric positive definite systems lhs[i] x[i] = rhs[i].

    numpy has a batched Cholesky factorization but no batched triangular solve, so a
    Cholesky-based solve needs a factorization plus two general solves. Measured for 500
    systems of rank 64 on this project's 2-core machine: one batched LAPACK ``gesv`` (LU)
    took 22 ms, Cholesky + two solves 49 ms. The systems are SPD, so LU with partial
    pivoting returns the same solution to rounding; we take the faster one.
    """
    if len(lhs) == 0:
        return np.zeros(rhs.shape, dtype=np.float64)
    return np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]


@dataclass(frozen=True)
class BlockSolution:
    """New factors of a block and the block's share of the loss.

    Attributes
    ----------
    factors : ndarray of float32, shape (n_rows, k)
    observed_loss : float
        sum_S [W_ij (a_ij - u_i.v_j)^2 - w0_ij (u_i.v_j)^2] over the block's entries; the
        unobserved part then follows from w0 * tr(G_U G_V) over all rows and columns
        (the popularity-weighted Gramians G_U = sum_i s_i u_i u_i^T and G_V likewise).
    regularization_loss : float
        sum_i lambda_i |u_i|^2 over the block's rows.
    """

    factors: np.ndarray
    observed_loss: float
    regularization_loss: float


def solve_block(
    block: CsrBlock, other: np.ndarray, other_gramian: np.ndarray, weights: ObjectiveWeights
) -> BlockSolution:
    """Exactly minimize the objective over the rows of a block, the other side fixed.

    Rows without observations get zero factors. With w0 > 0 or lambda > 0 every system is
    positive definite (``WALSParams`` rejects w0 = lambda = 0); an exactly singular one
    falls back to the pseudo-inverse. Rows are
    assembled and solved :func:`rows_per_solve` at a time (in order of their length), which
    bounds the k x k work arrays whatever the block size and rank.

    ``other_gramian`` is the fixed side's G_t = sum_j t_j v_j v_j^T (:func:`gramian` when
    the column popularity scales are all 1).

    The loss terms come from the normal equations at no extra cost: per row,
    sum_j [W (a - u.v)^2 - w0_ij (u.v)^2] = sum_j W a^2 - 2 u.b + u^T M u, and
    u^T M u = u^T lhs u - w0 s_i u^T G_t u - lambda_i |u|^2.
    """
    k = other.shape[1]
    counts = block.counts
    reg = row_regularization(counts, weights)
    gram = np.asarray(other_gramian, dtype=np.float64)
    w0 = weights.unobserved_weight
    operands = BlockOperands.of(block, other, weights)
    w_obs = operands.w_obs.astype(np.float64)
    row_scales = np.ones(block.n_rows) if operands.row_scales is None else operands.row_scales
    row_of_entry = np.repeat(np.arange(block.n_rows), counts)
    target_sq = np.bincount(
        row_of_entry, weights=w_obs * block.targets.astype(np.float64) ** 2, minlength=block.n_rows
    )
    order = np.argsort(counts, kind="stable")
    order = order[counts[order] > 0]
    factors = np.zeros((block.n_rows, k), dtype=np.float32)
    observed, regularization = float(np.sum(target_sq)), 0.0
    diagonal = np.arange(k)
    step = rows_per_solve(k)
    for start in range(0, len(order), step):
        rows = order[start : start + step]
        eqs = normal_equations(block, other, weights, rows, operands)
        lhs = eqs.observed_gram  # completed in place: w0 s_i G + lambda_i I
        lhs += (w0 * row_scales[rows])[:, None, None] * gram[None, :, :]
        lhs[:, diagonal, diagonal] += reg[rows][:, None]
        try:
            solution = solve_spd_batch(lhs, eqs.rhs)
        except np.linalg.LinAlgError:
            solution = _lstsq_stack(lhs, eqs.rhs)
        factors[rows] = solution
        u = factors[rows].astype(np.float64)  # the stored (float32) factors
        norms = np.sum(u * u, axis=1)
        quadratic = (
            np.einsum("ni,nij,nj->n", u, lhs, u, optimize=True)
            - w0 * row_scales[rows] * np.einsum("ni,ij,nj->n", u, gram, u, optimize=True)
            - reg[rows] * norms
        )
        observed += float(np.sum(quadratic - 2.0 * np.sum(u * eqs.rhs, axis=1)))
        regularization += float(np.sum(reg[rows] * norms))
    return BlockSolution(factors, observed, regularization)


def _lstsq_stack(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Least-squares fallback for singular systems: the pseudo-inverse, batched."""
    return np.matmul(np.linalg.pinv(lhs), rhs[:, :, None])[:, :, 0]


def solve_block_cg(
    block: CsrBlock,
    other: np.ndarray,
    other_gramian: np.ndarray,
    weights: ObjectiveWeights,
    previous: np.ndarray,
    steps: int,
) -> BlockSolution:
    """Approximately minimize over the rows of a block by conjugate gradient.

    Each row's normal equation ``A_i u_i = b_i`` (see the module docstring) is solved by
    ``steps`` conjugate gradient iterations started from ``previous`` (the row's factors
    from the last sweep), as benfred/implicit does for implicit feedback. ``A_i`` is never
    formed: ``A_i x = w0 s_i G x + lambda_i x + V_i^T (c_i * (V_i x))`` with ``c_i`` the
    entries' W - w0_ij costs O(n_i k + k^2) per row and step instead of the exact solve's
    O(n_i k^2 + k^3). Rows are padded into the same length buckets and chunks as the exact
    solve, so every product is one batched ``matmul`` over a chunk; rows longer than a
    chunk are solved exactly (:func:`solve_block` accumulates them in slices). In exact
    arithmetic, k steps reach the exact solution.

    Parameters
    ----------
    block, other, other_gramian, weights
        As :func:`solve_block`.
    previous : ndarray, shape (n_rows, k)
        The starting point.
    steps : int
        Iterations per row (all rows of a chunk advance together).

    Returns
    -------
    BlockSolution
        The loss terms are computed from the entries directly.
    """
    k = other.shape[1]
    counts = block.counts
    reg = row_regularization(counts, weights)
    w0 = weights.unobserved_weight
    w0_gram = w0 * np.asarray(other_gramian, dtype=np.float64)
    # float32 operands, each chunk's rows cast to float64 as they are gathered: a float64
    # copy of the routed factors would double the task's largest array.
    operands = BlockOperands.of(block, other, weights)
    w_obs, other_padded = operands.w_obs, operands.other_padded
    row_scales = np.ones(block.n_rows) if operands.row_scales is None else operands.row_scales
    zero_row = len(other)
    factors = np.zeros((block.n_rows, k), dtype=np.float32)
    observed, regularization = 0.0, 0.0
    # Rows too long for a chunk (a popular item) are solved exactly, slice by slice, so
    # that memory stays bounded by the chunk; they are few (at most nnz / chunk length).
    long_rows = np.flatnonzero(counts * k > MAX_CHUNK_FLOATS)
    if len(long_rows):
        exact = solve_block(_sub_block(block, long_rows), other, other_gramian, weights)
        factors[long_rows] = exact.factors
        observed += exact.observed_loss
        regularization += exact.regularization_loss
    short_counts = counts.copy()
    short_counts[long_rows] = 0
    for positions in _length_buckets(short_counts):
        length = int(counts[positions].max())
        step = max(1, MAX_CHUNK_FLOATS // (length * k))
        offsets = np.arange(length)
        for first in range(0, len(positions), step):
            rows = positions[first : first + step]
            valid = offsets[None, :] < counts[rows][:, None]
            entry = np.where(valid, block.indptr[rows][:, None] + offsets[None, :], 0)
            v = other_padded[np.where(valid, block.cols[entry], zero_row)].astype(np.float64)
            w = np.where(valid, w_obs[entry], 0.0).astype(np.float64)
            excess = np.where(valid, operands.excess[entry], 0.0).astype(np.float64)
            a = np.where(valid, block.targets[entry], 0.0)
            system = _RowSystems(v, excess, reg[rows][:, None], w0_gram, row_scales[rows][:, None])
            rhs = np.matmul((w * a)[:, None, :], v)[:, 0, :]
            factors[rows] = _conjugate_gradient(system, rhs, previous[rows], steps)
            u = factors[rows].astype(np.float64)  # the stored (float32) factors
            predictions = np.matmul(v, u[:, :, None])[:, :, 0]
            # w - excess is w0_ij on entries, 0 on padding.
            observed += float(np.sum(w * (a - predictions) ** 2 - (w - excess) * predictions**2))
            regularization += float(np.sum(reg[rows] * np.sum(u * u, axis=1)))
    return BlockSolution(factors, observed, regularization)


@dataclass(frozen=True)
class _RowSystems:
    """The normal equations of a chunk of rows, in the form CG multiplies with."""

    v: np.ndarray  # (rows, L, k) the other side's factors of every entry, zero-padded
    excess: np.ndarray  # (rows, L) W_ij - w0_ij, zero on padding
    reg: np.ndarray  # (rows, 1) lambda_i
    w0_gram: np.ndarray  # (k, k) w0 G_t
    row_scales: np.ndarray  # (rows, 1) s_i

    def apply(self, x: np.ndarray) -> np.ndarray:
        """A_i x_i for every row."""
        scores = np.matmul(self.v, x[:, :, None])[:, :, 0] * self.excess
        observed = np.matmul(scores[:, None, :], self.v)[:, 0, :]
        return self.row_scales * (x @ self.w0_gram) + self.reg * x + observed


def _conjugate_gradient(
    system: _RowSystems, rhs: np.ndarray, start: np.ndarray, steps: int
) -> np.ndarray:
    """``steps`` CG iterations on every row's system at once, from ``start``."""
    x = start.astype(np.float64)
    residual = rhs - system.apply(x)
    direction = residual.copy()
    r_sq = np.sum(residual * residual, axis=1)
    for _ in range(steps):
        a_dir = system.apply(direction)
        curvature = np.sum(direction * a_dir, axis=1)
        step = np.divide(r_sq, curvature, out=np.zeros_like(r_sq), where=curvature > 0)
        x += step[:, None] * direction
        residual -= step[:, None] * a_dir
        new_r_sq = np.sum(residual * residual, axis=1)
        beta = np.divide(new_r_sq, r_sq, out=np.zeros_like(r_sq), where=r_sq > 0)
        direction = residual + beta[:, None] * direction
        r_sq = new_r_sq
    return x


def _sub_block(block: CsrBlock, rows: np.ndarray) -> CsrBlock:
    """The rows ``rows`` of a block as a block of their own (same column indices)."""
    entries = np.concatenate(
        [np.arange(block.indptr[r], block.indptr[r + 1]) for r in rows]
    ).astype(np.int64)
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(block.indptr[rows + 1] - block.indptr[rows], out=indptr[1:])
    confidences = None if block.confidences is None else block.confidences[entries]
    other_counts = None if block.other_counts is None else block.other_counts[entries]
    return CsrBlock(indptr, block.cols[entries], block.targets[entries], confidences, other_counts)
