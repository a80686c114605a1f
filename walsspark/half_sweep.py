"""One half-sweep of block-partitioned WALS on Spark (DataFrame + Arrow APIs only): solve
every block of one side with the other side's factors fixed.

A sweep (:func:`walsspark.train.fit`) is a row (user) half-sweep followed by a column
(item) half-sweep. A half-sweep:

1. The other side's last output holds, besides its factor blocks, one *route* row per
   (source block, destination block that needs some of its rows): the factors the
   destination needs, already in the destination CSR's column order (the routes were fixed
   once by ``blocks``). Only these rows are shuffled, each to its destination's partition.
2. The fixed side's k x k Gramian G = sum over its blocks of F_b^T F_b: with few blocks
   every route carries its source block's Gramian, routes go to every block, and each
   task adds up what it receives; with many (when B_users * B_items Gramians would exceed
   :data:`ROUTED_GRAMIAN_BYTES`) it is reduced once: the block rows' Gramians go to one
   task, which sends the sum, one *Gramian row*, to every block of the solving side.
   Either way the Gramians are added in block order: the same bytes whatever order they
   arrive in.
3. Rating blocks and routed factors are cogrouped by partition key
   (``groupBy().cogroup().applyInArrow``): every task solves one whole block with
   :func:`walsspark.solver.solve_block` (or, with ``solver="cg"``,
   :func:`walsspark.solver.solve_block_cg`, started from the block's own last factors,
   which arrive as a block row among the routes) and emits the new factor block and its
   own routes.
4. The output is a lazy local checkpoint: the user half-sweep is computed by the job that
   collects the item half-sweep's per-block losses, one Spark job and a few scalars per
   block per sweep. No factor matrix, and no Gramian, reaches the driver.

Shuffled per half-sweep: the routed factors (each needed factor once per block needing it)
and the Gramians (k^2 float64, 32 KB at rank 64). Routed with the factors they cost
B_fixed * B_solving of them (128 KB at 2 x 2 blocks, 2 GB at 256 x 256); reduced, B_fixed +
B_solving, but the reduction is a stage of its own (measured on ML-1M, 2 x 2 blocks, rank
64: 1.27 s a sweep against 0.9 s with routed Gramians). Hence the threshold.

The loss after a sweep needs no dense product: the item half-sweep's tasks hold, for every
observed entry, both the user factors and the new item factors, so each item block
computes ``sum_S [W (a - u.v)^2 - w0 (u.v)^2] + w0 tr(G_U G_block) + sum_j lambda_j |v_j|^2``
over its entries and rows, plus the users' ``sum_i lambda_i |u_i|^2`` routed to it (each
user block sends its sum on one route only), and the driver adds up one number per block.

Held-out pairs are scored where the factors already meet: the layout routes the user
factors they need to their item block (:func:`walsspark.blocks.lay_out`), and the item
half-sweep's task scores its block's held-out pairs with the new item factors, returning
five sums per block. Holdout metrics after every sweep cost no extra job and move no
factors.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from walsspark.blocks import SideLayout, pkey_column
from walsspark.factors import (
    binary_views,
    decode_array,
    encode_array,
    encode_factors,
    first_row_views,
    initial_factors,
)
from walsspark.faults import maybe_fail
from walsspark.solver import (
    MAX_CHUNK_FLOATS,
    CsrBlock,
    ObjectiveWeights,
    entry_unobserved_scales,
    row_unobserved_scales,
    solve_block,
    solve_block_cg,
    weighted_gramian,
)

log = logging.getLogger("walsspark")

# A half-sweep's output: one "block" row per solved block (kind 0: the whole factor block,
# its Gramian and loss terms) and one "route" row per (block, destination) (kind 1: the
# factors a block of the other side needs, in that block's column order). The routes are
# what the next half-sweep shuffles; the block rows are what is kept and saved.
# A *Gramian row* (kind 2) carries the fixed side's total Gramian to one block of the side
# being solved; it exists only between the reduction and the solve. ``gram`` is set on block
# and Gramian rows, ``holdout`` (float64 sums, :data:`HOLDOUT_SUMS`) on the block rows of an
# item half-sweep that scored held-out pairs.
SOLVED_SCHEMA = (
    "kind byte, block int, dst_pkey int, factors binary, gram binary, loss double, "
    "regularization double, holdout binary"
)
BLOCK_ROW, ROUTE_ROW, GRAM_ROW = 0, 1, 2
_SOLVED_ARROW_SCHEMA = pa.schema(
    [
        ("kind", pa.int8()),
        ("block", pa.int32()),
        ("dst_pkey", pa.int32()),
        ("factors", pa.binary()),
        ("gram", pa.binary()),
        ("loss", pa.float64()),
        ("regularization", pa.float64()),
        ("holdout", pa.binary()),
    ]
)
# What a block's held-out pairs add up to: pairs scored, sum of squared errors, of absolute
# errors, of W-weighted squared errors, of the weights W.
HOLDOUT_SUMS = ("count", "squared", "absolute", "weighted", "weight")
# Up to this many bytes of Gramians per half-sweep (B_users * B_items * k^2 * 8) they ride
# on the routes; beyond, they are reduced once per half-sweep (see the module docstring).
ROUTED_GRAMIAN_BYTES = 16 * 1024 * 1024


def gramians_on_routes(num_user_blocks: int, num_item_blocks: int, rank: int) -> bool:
    """Whether the routes carry their block's Gramian (few blocks) or the Gramian is
    reduced once per half-sweep (many)."""
    return num_user_blocks * num_item_blocks * rank * rank * 8 <= ROUTED_GRAMIAN_BYTES


def _solved_table(
    block_row: dict,
    block: int,
    factors: np.ndarray,
    loss: float,
    regularization: float,
    holdout: np.ndarray | None = None,
    gram_on_routes: bool = False,
    row_scales: np.ndarray | None = None,
) -> pa.Table:
    """The block row and the route rows of a freshly computed factor block.

    The block row carries the block's Gramian (weighted by ``row_scales``, the rows'
    popularity scales, when given) and loss terms; a route row the factors one
    block of the other side needs. With ``gram_on_routes`` there is a route to every block
    of the other side, each carrying the Gramian; otherwise only to the blocks that need
    some of this block's rows (share ratings with it), and the Gramian is reduced from
    the block rows.
    """
    dst_pkeys = block_row["route_dst_pkeys"]
    offsets = block_row["route_offsets"]
    indices = block_row["route_indices"]
    lengths = np.diff(offsets)
    targets = np.arange(len(dst_pkeys)) if gram_on_routes else np.flatnonzero(lengths > 0)
    routes = [encode_factors(factors[indices[offsets[r] : offsets[r + 1]]]) for r in targets]
    n_rows = len(routes) + 1
    # The regularization sum rides on the first non-empty route only, so that the blocks of
    # the other side, adding up what they receive, count it exactly once (a block with
    # ratings always has a route: whoever rated its rows needs them).
    route_regularization = [0.0] * len(routes)
    non_empty = np.flatnonzero(lengths[targets] > 0)
    if len(non_empty):
        route_regularization[int(non_empty[0])] = regularization
    gram = encode_array(weighted_gramian(factors, row_scales).ravel(), "<f8")
    route_gram = gram if gram_on_routes else None
    return pa.table(
        {
            "kind": pa.array([BLOCK_ROW] + [ROUTE_ROW] * len(routes), pa.int8()),
            "block": pa.array([block] * n_rows, pa.int32()),
            "dst_pkey": pa.array([-1, *dst_pkeys[targets].tolist()], pa.int32()),
            "factors": pa.array([encode_factors(factors), *routes], pa.binary()),
            "gram": pa.array([gram] + [route_gram] * len(routes), pa.binary()),
            "loss": pa.array([loss] + [0.0] * len(routes), pa.float64()),
            "regularization": pa.array([regularization, *route_regularization], pa.float64()),
            "holdout": pa.array(
                [None if holdout is None else encode_array(holdout, "<f8")] + [None] * len(routes),
                pa.binary(),
            ),
        },
        schema=_SOLVED_ARROW_SCHEMA,
    )


# The binary rating-block fields a solve reads, with their element types (read in place by
# walsspark.factors.binary_views; not the ids, which would cost a Python object each).
_BLOCK_ROW_ARRAYS = {
    "indptr": "<i8",
    "cols": "<i4",
    "targets": "<f4",
    "confidences": "<f4",
    "other_counts": "<f4",
    "init_hashes": "<i8",
    "route_dst_pkeys": "<i4",
    "route_offsets": "<i8",
    "route_indices": "<i4",
    "holdout_indptr": "<i8",
    "holdout_cols": "<i4",
    "holdout_targets": "<f4",
    "holdout_confidences": "<f4",
    "holdout_other_counts": "<f4",
}


def _initial_fn(rank: int, gram_on_routes: bool, weights: ObjectiveWeights | None):
    """mapInArrow function: initial factor blocks (and their routes) from the id hashes."""

    def init(batches):
        for batch in batches:
            table = pa.Table.from_batches([batch])
            for index in range(table.num_rows):
                row = first_row_views(table.slice(index, 1), _BLOCK_ROW_ARRAYS)
                factors = initial_factors(row["init_hashes"], rank)
                block = int(table.column("block")[index].as_py())
                scales = None
                if weights is not None:
                    scales = row_unobserved_scales(csr_from_row(row), weights)
                solved = _solved_table(row, block, factors, 0.0, 0.0, None, gram_on_routes, scales)
                yield from solved.to_batches()

    return init


def initial_factor_blocks(
    side: SideLayout,
    rank: int,
    gram_on_routes: bool = False,
    weights: ObjectiveWeights | None = None,
) -> DataFrame:
    """Initial factors of a side, as a half-sweep's output (blocks and routes).

    ``weights`` (the objective seen when solving this side) weigh the Gramian by the
    side's popularity scales, as the next half-sweep expects of its fixed side.
    """
    fields = ["block", *_BLOCK_ROW_ARRAYS]
    initial = _initial_fn(rank, gram_on_routes, weights)
    return materialize(side.rating_blocks.select(*fields).mapInArrow(initial, SOLVED_SCHEMA))


def csr_from_row(row: dict, prefix: str = "") -> CsrBlock:
    """A :class:`CsrBlock` from one rating-block row (as produced by ``blocks``).

    ``prefix="holdout_"`` gives the block's held-out pairs instead of its training pairs.
    Values are numpy arrays (:func:`walsspark.factors.first_row_views`) or bytes.
    """

    def array(name: str) -> np.ndarray | None:
        value = row.get(prefix + name)
        if value is None or isinstance(value, np.ndarray):
            return value
        return decode_array(value, _BLOCK_ROW_ARRAYS[name])

    return CsrBlock(
        indptr=array("indptr"),
        cols=array("cols"),
        targets=array("targets"),
        confidences=array("confidences"),
        other_counts=array("other_counts"),
    )


def holdout_sums(
    pairs: CsrBlock,
    factors: np.ndarray,
    other: np.ndarray,
    weights: ObjectiveWeights,
    row_counts: np.ndarray | None = None,
) -> np.ndarray:
    """The :data:`HOLDOUT_SUMS` of a block's held-out pairs under the given factors.

    Parameters
    ----------
    pairs : CsrBlock
        Held-out pairs of the block's rows; columns index ``other``.
    factors : ndarray, shape (n_rows, k)
        The block's factors.
    other : ndarray, shape (n_routed, k)
        The other side's factors routed to the block.
    weights : ObjectiveWeights
        For W = w0_ij + R C c of each pair.
    row_counts : ndarray, optional
        The rows' training frequencies (the training CSR's row lengths), for the rows'
        popularity scales when the weights have them.
    """
    rows = np.repeat(np.arange(pairs.n_rows), pairs.counts)
    # Pairs in slices: a (slice x k) gather of each side bounds memory by the slice.
    sums = np.zeros(len(HOLDOUT_SUMS), dtype=np.float64)
    # In float64 (the metrics are sums of many pairs). The pairs' own row lengths are
    # held-out counts: the rows' popularity scales follow the training ones.
    scale = weights.row_weight * weights.col_weight
    if pairs.confidences is None:
        pair_weights = np.full(len(rows), scale)
    else:
        pair_weights = scale * pairs.confidences.astype(np.float64)
    unobserved = entry_unobserved_scales(pairs, weights, row_counts)
    w0 = weights.unobserved_weight
    pair_weights += w0 if unobserved is None else w0 * unobserved.astype(np.float64)
    step = max(1, MAX_CHUNK_FLOATS // factors.shape[1])
    for first in range(0, len(rows), step):
        entries = slice(first, first + step)
        predictions = np.einsum(
            "ij,ij->i",
            factors[rows[entries]].astype(np.float64),
            other[pairs.cols[entries]].astype(np.float64),
        )
        error = pairs.targets[entries].astype(np.float64) - predictions
        weight = pair_weights[entries]
        sums += (
            len(error),
            float(np.sum(error**2)),
            float(np.sum(np.abs(error))),
            float(np.sum(weight * error**2)),
            float(np.sum(weight)),
        )
    return sums


def _routed_factors(routed: pa.Table, rank: int) -> np.ndarray:
    """The routed pieces, one matrix in source-block order: the block's needed list.

    Every block of the fixed side that shares ratings with this block sends one route:
    concatenated in source-block order the pieces are exactly the needed list, which the
    CSR columns index. Each piece is read in place and copied once, into the result.
    """
    order = np.argsort(routed.column("block").to_numpy(), kind="stable")
    pieces = binary_views(routed.column("factors"), "<f4")
    lengths = [len(pieces[i]) // rank for i in order]
    other = np.empty((sum(lengths), rank), dtype=np.float32)
    start = 0
    for i, length in zip(order, lengths, strict=True):
        other[start : start + length] = pieces[i].reshape(length, rank)
        start += length
    return other


def _solve_fn(
    rank: int,
    weights: ObjectiveWeights,
    solver: str = "exact",
    cg_steps: int = 3,
    gram_on_routes: bool = False,
    side: str = "",
):
    """Cogroup function: solve one rating block against the factors routed to it.

    Receives the route rows for the block, the fixed side's Gramian (one Gramian row, or
    one Gramian per route with ``gram_on_routes``) and, with ``solver="cg"``, the block's
    own factors of the last sweep (a ``BLOCK_ROW``) as the conjugate gradient's starting
    point.
    """

    def solve(ratings: pa.Table, received: pa.Table) -> pa.Table:
        if ratings.num_rows == 0:
            # Gramian rows go to every block number; a block whose ids all hashed elsewhere
            # has no ratings (more blocks than ids) and nothing to solve.
            return _SOLVED_ARROW_SCHEMA.empty_table()
        number = int(ratings.column("block")[0].as_py())
        maybe_fail(side, number)  # test-only (walsspark.faults); off unless asked for
        row = first_row_views(ratings, _BLOCK_ROW_ARRAYS)
        block = csr_from_row(row)
        kinds = received.column("kind").to_numpy()
        routed = received.filter(pa.array(kinds == ROUTE_ROW))
        other = _routed_factors(routed, rank)
        fixed_gram = _fixed_gramian(received.filter(pa.array(kinds != BLOCK_ROW)), rank)
        previous = received.filter(pa.array(kinds == BLOCK_ROW))
        if solver == "cg" and previous.num_rows:
            start = binary_views(previous.column("factors"), "<f4")[0].reshape(-1, rank)
            solution = solve_block_cg(block, other, fixed_gram, weights, start, cg_steps)
        else:
            solution = solve_block(block, other, fixed_gram, weights)
        # This block's share of the loss after this half-sweep: observed part, unobserved
        # part w0 tr(G_fixed G_block) (both weighted by popularity scales when there are
        # any), its own regularization, and the share of the fixed side's regularization
        # that was routed to it (each fixed block's sum reaches exactly one block of this
        # side).
        row_scales = row_unobserved_scales(block, weights)
        block_gram = weighted_gramian(solution.factors, row_scales)
        loss = (
            solution.observed_loss
            + weights.unobserved_weight * float(np.sum(fixed_gram * block_gram))
            + solution.regularization_loss
            + float(np.sum(routed.column("regularization").to_numpy()))
        )
        scored = None
        if row["holdout_indptr"] is not None:
            pairs = csr_from_row(row, "holdout_")
            scored = holdout_sums(pairs, solution.factors, other, weights, block.counts)
        return _solved_table(
            row,
            number,
            solution.factors,
            loss,
            solution.regularization_loss,
            scored,
            gram_on_routes,
            row_scales,
        )

    return solve


def _fixed_gramian(rows: pa.Table, rank: int) -> np.ndarray:
    """The fixed side's Gramian from the received Gramian row, or from the Gramians the
    routes carried (one per source block, added in block order)."""
    kinds = rows.column("kind").to_numpy()
    grams = binary_views(rows.column("gram"), "<f8")
    if np.any(kinds == GRAM_ROW):
        return grams[int(np.flatnonzero(kinds == GRAM_ROW)[0])].reshape(rank, rank)
    total = np.zeros(rank * rank, dtype=np.float64)
    for index in np.argsort(rows.column("block").to_numpy(), kind="stable"):
        total += grams[index]
    return total.reshape(rank, rank)


def _gramian_total_fn(dst_pkeys: list[int], rank: int):
    """applyInArrow function: the fixed side's Gramian, one Gramian row per solving block.

    Adds the block Gramians up in block order, so that any recomputation (a retried
    task, a lost executor) gives the same bytes.
    """

    def total(grams: pa.Table) -> pa.Table:
        order = np.argsort(grams.column("block").to_numpy(), kind="stable")
        views = binary_views(grams.column("gram"), "<f8")
        gram = np.zeros(rank * rank, dtype=np.float64)
        for index in order:
            gram += views[index]
        count = len(dst_pkeys)
        return pa.table(
            {
                "kind": pa.array([GRAM_ROW] * count, pa.int8()),
                "dst_pkey": pa.array(dst_pkeys, pa.int32()),
                "block": pa.array([-1] * count, pa.int32()),
                "factors": pa.array([None] * count, pa.binary()),
                "gram": pa.array([encode_array(gram, "<f8")] * count, pa.binary()),
                "regularization": pa.array([0.0] * count, pa.float64()),
            }
        )

    return total


_ROUTED_SCHEMA = (
    "kind byte, dst_pkey int, block int, factors binary, gram binary, regularization double"
)


def half_sweep(
    solving: SideLayout,
    fixed_solved: DataFrame,
    weights: ObjectiveWeights,
    rank: int,
    previous: DataFrame | None = None,
    cg_steps: int = 3,
    gram_on_routes: bool = False,
) -> DataFrame:
    """Solve every block of ``solving`` against the other side's last output (lazy).

    Only the route rows of ``fixed_solved`` are shuffled, each to the one block that needs
    it, with the Gramians (on the routes, or reduced into one Gramian row per block: see
    :func:`gramians_on_routes`, which must have decided ``fixed_solved`` too); the rating
    blocks are already partitioned by ``pkey`` and do not move. With ``previous`` (the
    side's own last output) the blocks are solved by conjugate gradient from their previous
    factors, each block row sent back to its own block.
    """
    columns = ["kind", "dst_pkey", "block", "factors", "gram", "regularization"]
    routed = fixed_solved.filter(F.col("kind") == ROUTE_ROW).select(*columns)
    if not gram_on_routes:
        gram_total = (
            fixed_solved.filter(F.col("kind") == BLOCK_ROW)
            .select("block", "gram")
            .groupBy(F.lit(0).alias("all"))
            .applyInArrow(_gramian_total_fn(solving.pkeys, rank), _ROUTED_SCHEMA)
        )
        routed = routed.unionByName(gram_total)
    if previous is not None:
        own = previous.filter(F.col("kind") == BLOCK_ROW).withColumn(
            "dst_pkey", pkey_column(solving.pkeys, "block")
        )
        routed = routed.unionByName(own.select(*columns))
    solver = "exact" if previous is None else "cg"
    solve = _solve_fn(rank, weights, solver, cg_steps, gram_on_routes, solving.name)
    return (
        solving.rating_blocks.select("pkey", "block", *_BLOCK_ROW_ARRAYS)
        .groupBy("pkey")
        .cogroup(routed.repartition(solving.num_blocks, "dst_pkey").groupBy("dst_pkey"))
        .applyInArrow(solve, SOLVED_SCHEMA)
    )


def collect_sweep(solved: DataFrame) -> tuple[float, np.ndarray | None]:
    """Compute a half-sweep (and what it depends on); return the loss after it and, when
    its blocks scored held-out pairs, their :data:`HOLDOUT_SUMS`."""
    rows = solved.filter(F.col("kind") == BLOCK_ROW).select("block", "loss", "holdout").collect()
    rows.sort(key=lambda row: row["block"])  # a fixed order: the same sums on every run
    loss = float(sum(row["loss"] for row in rows))
    scored = [decode_array(row["holdout"], "<f8") for row in rows if row["holdout"] is not None]
    return loss, (np.sum(scored, axis=0) if scored else None)


def holdout_metrics_of(sums: np.ndarray | None, total: int) -> dict:
    """``count``, ``cold_count``, ``rmse``, ``mae``, ``loss``, ``rwse`` from the summed
    :data:`HOLDOUT_SUMS` of ``total`` held-out pairs (see :mod:`walsspark.evaluate`)."""
    values = dict(zip(HOLDOUT_SUMS, [0.0] * 5 if sums is None else sums.tolist(), strict=True))
    count = int(round(values["count"]))
    metrics: dict = {"count": count, "cold_count": total - count}
    if count == 0:
        metrics.update(rmse=math.nan, mae=math.nan, loss=math.nan, rwse=math.nan)
        return metrics
    metrics["rmse"] = math.sqrt(values["squared"] / count)
    metrics["mae"] = values["absolute"] / count
    metrics["loss"] = values["weighted"]
    metrics["rwse"] = (
        math.sqrt(values["weighted"] / values["weight"]) if values["weight"] else math.nan
    )
    return metrics


def materialize(solved: DataFrame, reliable: bool = False, eager: bool = False) -> DataFrame:
    """Compute a half-sweep's output once and cut its lineage.

    A local checkpoint per half-sweep keeps every query plan one half-sweep long.
    Measured on ML-1M (rank 64, 2 blocks, local[2]): with ``cache()`` instead, planning the
    ever longer plans took seconds per sweep by the fourth sweep, and one sweep in six
    stalled for 15 s; local checkpoints held every sweep at 1.3-1.7 s.

    Local checkpoints live on the executors; ``reliable`` writes a checkpoint to
    ``spark.checkpoint.dir`` instead, so that the job survives the loss of an executor.
    ``eager`` writes a reliable one at once: a lazy one is written only when a job's result
    stage reaches it, which the user half-sweep's (read only through shuffles) never is.
    """
    if reliable:
        return solved.checkpoint(eager=eager)
    return solved.localCheckpoint(eager=False)
