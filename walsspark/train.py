"""Block-partitioned WALS training on Spark (DataFrame + Arrow APIs only).

A sweep is a row (user) half-sweep followed by a column (item) half-sweep. A half-sweep:

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
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from walsspark.blocks import SideLayout, lay_out, pkey_column, warm_pairs
from walsspark.cluster import conf_value, default_parallelism
from walsspark.factors import (
    binary_views,
    decode_array,
    encode_array,
    encode_factors,
    first_row_views,
    initial_factors,
)
from walsspark.faults import maybe_fail
from walsspark.params import WALSParams
from walsspark.solver import (
    MAX_CHUNK_FLOATS,
    CsrBlock,
    ObjectiveWeights,
    gramian,
    solve_block,
    solve_block_cg,
)
from walsspark.sweep_checkpoints import (
    SweepCheckpoints,
    data_digest,
    fingerprint,
    lost_local_checkpoint,
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


# Ratings per block the default block count aims at: a block's CSR and padded work arrays
# stay within a few hundred MB of task memory.
TARGET_RATINGS_PER_BLOCK = 2_000_000


@dataclass
class SweepRecord:
    """What one sweep reported."""

    sweep: int
    loss: float
    seconds: float
    metrics: dict | None = None


@dataclass
class TrainedFactors:
    """Result of :func:`fit`: factor blocks still on Spark, plus what the driver learned."""

    params: WALSParams
    users: SideLayout
    items: SideLayout
    user_factor_blocks: DataFrame
    item_factor_blocks: DataFrame  # half-sweep outputs: SOLVED_SCHEMA rows
    history: list[SweepRecord] = field(default_factory=list)
    num_ratings: int = 0
    fit_seconds: float = 0.0

    def release(self) -> None:
        """Free the cached rating blocks once the factors have been written or exported."""
        self.users.release()
        self.items.release()

    def user_factors(self) -> DataFrame:
        """Per-user rows: ``id`` (original id), ``features`` (array<float>)."""
        return factor_rows(self.users, self.user_factor_blocks, self.params.rank)

    def item_factors(self) -> DataFrame:
        """Per-item rows: ``id`` (original id), ``features`` (array<float>)."""
        return factor_rows(self.items, self.item_factor_blocks, self.params.rank)

    def factor_blocks(self, side: str) -> DataFrame:
        """One row per block of ``side`` ("user" or "item"): see :func:`factor_blocks`."""
        if side == "user":
            return factor_blocks(self.users, self.user_factor_blocks)
        return factor_blocks(self.items, self.item_factor_blocks)


def default_num_blocks(spark: SparkSession, num_ratings: int) -> int:
    """Blocks per side: one per task slot of the cluster
    (:func:`walsspark.cluster.default_parallelism`: its executors' cores, not the driver's),
    more when blocks would outgrow :data:`TARGET_RATINGS_PER_BLOCK` ratings, so that a
    task's memory follows the block size and not the data size. No upper bound: the
    Gramians are reduced once per half-sweep, so a half-sweep ships O(B) of them, not
    O(B^2), and routes exist only between blocks that share ratings.
    """
    by_size = -(-num_ratings // TARGET_RATINGS_PER_BLOCK)
    return max(1, default_parallelism(spark), by_size)


def _solved_table(
    block_row: dict,
    block: int,
    factors: np.ndarray,
    loss: float,
    regularization: float,
    holdout: np.ndarray | None = None,
    gram_on_routes: bool = False,
) -> pa.Table:
    """The block row and the route rows of a freshly computed factor block.

    The block row carries the block's Gramian and loss terms; a route row the factors one
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
    gram = encode_array(gramian(factors).ravel(), "<f8")
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
    "init_hashes": "<i8",
    "route_dst_pkeys": "<i4",
    "route_offsets": "<i8",
    "route_indices": "<i4",
    "holdout_indptr": "<i8",
    "holdout_cols": "<i4",
    "holdout_targets": "<f4",
    "holdout_confidences": "<f4",
}


def _initial_fn(rank: int, gram_on_routes: bool):
    """mapInArrow function: initial factor blocks (and their routes) from the id hashes."""

    def init(batches):
        for batch in batches:
            table = pa.Table.from_batches([batch])
            for index in range(table.num_rows):
                row = first_row_views(table.slice(index, 1), _BLOCK_ROW_ARRAYS)
                factors = initial_factors(row["init_hashes"], rank)
                block = int(table.column("block")[index].as_py())
                solved = _solved_table(row, block, factors, 0.0, 0.0, None, gram_on_routes)
                yield from solved.to_batches()

    return init


def initial_factor_blocks(side: SideLayout, rank: int, gram_on_routes: bool = False) -> DataFrame:
    """Initial factors of a side, as a half-sweep's output (blocks and routes)."""
    fields = ["block", *_BLOCK_ROW_ARRAYS]
    initial = _initial_fn(rank, gram_on_routes)
    return _materialize(side.rating_blocks.select(*fields).mapInArrow(initial, SOLVED_SCHEMA))


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
    )


def holdout_sums(
    pairs: CsrBlock, factors: np.ndarray, other: np.ndarray, weights: ObjectiveWeights
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
        For W = w0 + R C c of each pair.
    """
    rows = np.repeat(np.arange(pairs.n_rows), pairs.counts)
    # Pairs in slices: a (slice x k) gather of each side bounds memory by the slice.
    sums = np.zeros(len(HOLDOUT_SUMS), dtype=np.float64)
    w0 = weights.unobserved_weight
    scale = weights.row_weight * weights.col_weight
    step = max(1, MAX_CHUNK_FLOATS // factors.shape[1])
    for first in range(0, len(rows), step):
        entries = slice(first, first + step)
        predictions = np.einsum(
            "ij,ij->i",
            factors[rows[entries]].astype(np.float64),
            other[pairs.cols[entries]].astype(np.float64),
        )
        error = pairs.targets[entries].astype(np.float64) - predictions
        if pairs.confidences is None:
            weight = np.full(len(error), w0 + scale)
        else:
            weight = w0 + scale * pairs.confidences[entries].astype(np.float64)
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
        # part w0 tr(G_fixed G_block), its own regularization, and the share of the fixed
        # side's regularization that was routed to it (each fixed block's sum reaches
        # exactly one block of this side).
        loss = (
            solution.observed_loss
            + weights.unobserved_weight * float(np.sum(fixed_gram * gramian(solution.factors)))
            + solution.regularization_loss
            + float(np.sum(routed.column("regularization").to_numpy()))
        )
        scored = None
        if row["holdout_indptr"] is not None:
            pairs = csr_from_row(row, "holdout_")
            scored = holdout_sums(pairs, solution.factors, other, weights)
        return _solved_table(
            row,
            number,
            solution.factors,
            loss,
            solution.regularization_loss,
            scored,
            gram_on_routes,
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


def _materialize(solved: DataFrame, reliable: bool = False) -> DataFrame:
    """Compute a half-sweep's output once and cut its lineage.

    A local checkpoint per half-sweep keeps every query plan one half-sweep long.
    Measured on ML-1M (rank 64, 2 blocks, local[2]): with ``cache()`` instead, planning the
    ever longer plans took seconds per sweep by the fourth sweep, and one sweep in six
    stalled for 15 s; local checkpoints held every sweep at 1.3-1.7 s.

    Local checkpoints live on the executors; ``reliable`` writes a checkpoint to
    ``spark.checkpoint.dir`` instead, so that the job survives the loss of an executor.
    """
    return solved.checkpoint(eager=False) if reliable else solved.localCheckpoint(eager=False)


def checkpoint_dir(spark: SparkSession) -> str | None:
    """The reliable checkpoint directory: ``spark.checkpoint.dir`` as the session was started,
    or, on classic Spark, one set later with ``SparkContext.setCheckpointDir`` (what MLlib
    users do for ALS)."""
    from walsspark.session import is_connect

    try:
        configured = spark.conf.get("spark.checkpoint.dir", None) or None
    except Exception:  # noqa: BLE001 - not every key is readable on every runtime
        configured = None
    if configured is None and not is_connect(spark):
        configured = spark.sparkContext.getCheckpointDir() or None
    return configured


def fit(
    spark: SparkSession,
    ratings: DataFrame,
    params: WALSParams,
    holdout: DataFrame | None = None,
    checkpoints: SweepCheckpoints | None = None,
) -> TrainedFactors:
    """Train user and item factors.

    Parameters
    ----------
    spark : SparkSession
    ratings : DataFrame
        Validated ratings with columns ``user``, ``item``, ``rating``, one row per pair.
    params : WALSParams
        Besides the objective: ``solver`` (exact or CG), ``tol`` (stop once a sweep changes
        the loss by a smaller fraction), ``checkpoint_interval``.
    holdout : DataFrame, optional
        Held-out pairs (``user``, ``item``, ``rating`` as the target, and ``confidence``
        when ``ratings`` has it) scored after every sweep, inside the item half-sweep: each
        sweep's ``metrics`` are :func:`holdout_metrics_of` (pairs whose user or item has no
        ratings are counted as cold, not scored).
    checkpoints : SweepCheckpoints, optional
        Where every ``checkpoint_interval``-th sweep's factors are written, and where a
        resumed run (``checkpoints.resume``) continues from. Without it, a reliable Spark
        checkpoint is taken instead when the session has a checkpoint directory.

    Returns
    -------
    TrainedFactors

    Notes
    -----
    Half-sweep outputs are local checkpoints, lost with their executor. When a sweep fails
    for that reason (:func:`walsspark.sweep_checkpoints.lost_local_checkpoint`), training
    goes back to the last sweep checkpoint (or, without one, to the initial factors) and
    computes the sweeps again, up to :data:`MAX_RESTARTS` times: the same bytes as an
    undisturbed run, since every sweep is a function of the one before.
    """
    params.validate()
    start = time.perf_counter()
    holdout_total = holdout.count() if holdout is not None else 0
    if checkpoints is not None:
        num_ratings, digest = data_digest(ratings)
    else:
        num_ratings, digest = ratings.count(), None
    restored = None
    if checkpoints is not None:
        resumable = checkpoints.resume and checkpoints.found()
        # Block counts left to the cluster are taken from the checkpoint: a resumed run's
        # sums must be taken over the same blocks.
        blocks = _resumed_blocks(params, resumable[0].fingerprint if resumable else None)
    else:
        blocks = None
    num_user_blocks, num_item_blocks = blocks or (
        params.num_user_blocks or default_num_blocks(spark, num_ratings),
        params.num_item_blocks or default_num_blocks(spark, num_ratings),
    )
    wanted = None
    if checkpoints is not None:
        data = {"num_ratings": num_ratings, "digest": digest, "holdout": holdout_total}
        wanted = fingerprint(params.to_dict(), data, (num_user_blocks, num_item_blocks))
        restored = checkpoints.start(wanted)
    scorable = warm_pairs(holdout, ratings) if holdout is not None and holdout_total else None
    users, items = lay_out(ratings, num_user_blocks, num_item_blocks, params.seed, scorable)
    log.info(
        "laid out %d ratings in %d user blocks and %d item blocks (%.1f s)",
        num_ratings,
        num_user_blocks,
        num_item_blocks,
        time.perf_counter() - start,
    )
    rank = params.rank
    user_weights = params.user_weights()
    item_weights = user_weights.swapped()

    reliable_dir = checkpoint_dir(spark) if checkpoints is None else None
    _warn_without_checkpoints(spark, checkpoints is not None or reliable_dir is not None)
    on_routes = gramians_on_routes(num_user_blocks, num_item_blocks, rank)
    cg = params.solver == "cg"
    # Where a sweep that lost its executor's local checkpoints starts again: the initial
    # factors (lazy, computed again from the cached layout), then each sweep checkpoint.
    # CG starts every block from its last factors: the users' first start is their
    # initial factors (a function of seed and id, like the items').
    restart = (
        0,
        initial_factor_blocks(users, rank, on_routes) if cg else None,
        initial_factor_blocks(items, rank, on_routes),
        [],
    )
    if restored is not None:
        user_blocks, item_blocks = checkpoints.tables(restored, SOLVED_SCHEMA)
        loss, scored = collect_sweep(item_blocks)
        history = [_record(entry) for entry in restored.history]
        metrics = holdout_metrics_of(scored, holdout_total) if holdout is not None else None
        history.append(SweepRecord(restored.sweep, loss, restored.seconds, metrics))
        restart = (restored.sweep, user_blocks, item_blocks, history)
        log.info(
            "resuming from the checkpoint of sweep %d in %s (loss %.6g)",
            restored.sweep,
            checkpoints.storage.describe(checkpoints.path),
            loss,
        )
    sweep, user_blocks, item_blocks, history = restart[0], restart[1], restart[2], [*restart[3]]
    restarts = 0
    while sweep < params.sweeps and not _converged(history, params.tol):
        sweep += 1
        sweep_start = time.perf_counter()
        # Every checkpoint_interval sweeps: a sweep checkpoint, or a reliable Spark
        # checkpoint when the session has a directory (MLlib's checkpointInterval);
        # otherwise the executors' local checkpoints only.
        # The last sweep too: the model is built from its factors after training, and
        # losing them with an executor then would fail the run.
        due = sweep % params.checkpoint_interval == 0 or sweep == params.sweeps
        previous_users, previous_items = (user_blocks, item_blocks) if cg else (None, None)
        try:
            user_blocks = _materialize(
                half_sweep(
                    users, item_blocks, user_weights, rank, previous_users, params.cg_steps,
                    on_routes,
                ),
                due and reliable_dir is not None,
            )  # fmt: skip
            item_blocks = _materialize(
                half_sweep(
                    items, user_blocks, item_weights, rank, previous_items, params.cg_steps,
                    on_routes,
                ),
                due and reliable_dir is not None,
            )  # fmt: skip
            if due and checkpoints is not None:
                user_blocks, item_blocks = checkpoints.write(
                    sweep, user_blocks, item_blocks, [_entry(r) for r in history], wanted,
                    SOLVED_SCHEMA, time.perf_counter() - sweep_start,
                )  # fmt: skip
            # One Spark job per sweep: collecting the item half-sweep's loss runs both halves.
            loss, scored = collect_sweep(item_blocks)
        except Exception as error:
            if not lost_local_checkpoint(error) or restarts >= MAX_RESTARTS:
                raise
            restarts += 1
            sweep, user_blocks, item_blocks, history = (
                restart[0], restart[1], restart[2], [*restart[3]],
            )  # fmt: skip
            log.warning(
                "sweep %d lost its input with an executor (%s): computing again from %s "
                "(restart %d of at most %d)",
                sweep + 1, _first_line(error),
                f"the checkpoint of sweep {sweep}" if sweep else "the initial factors",
                restarts, MAX_RESTARTS,
            )  # fmt: skip
            continue
        seconds = time.perf_counter() - sweep_start
        metrics = holdout_metrics_of(scored, holdout_total) if holdout is not None else None
        history.append(SweepRecord(sweep, loss, seconds, metrics))
        if due and (checkpoints is not None or reliable_dir is not None):
            restart = (sweep, user_blocks, item_blocks, [*history])
        _log_sweep(history[-1], params.sweeps)
    return TrainedFactors(
        params=params,
        users=users,
        items=items,
        user_factor_blocks=user_blocks,
        item_factor_blocks=item_blocks,
        history=history,
        num_ratings=num_ratings,
        fit_seconds=time.perf_counter() - start,
    )


# How often one training run goes back to a checkpoint after losing local checkpoints
# with an executor before it gives up.
MAX_RESTARTS = 3


def _converged(history: list[SweepRecord], tol: float) -> bool:
    """Whether the last sweep changed the loss by less than ``tol`` (relative)."""
    if tol <= 0 or len(history) < 2:
        return False
    before, loss = history[-2].loss, history[-1].loss
    change = abs(before - loss) / max(abs(before), 1e-300)
    if change < tol:
        log.info("relative loss change %.3g < tol %g: stopping", change, tol)
        return True
    return False


def _log_sweep(record: SweepRecord, sweeps: int) -> None:
    metrics = record.metrics
    if metrics is not None and metrics["count"]:
        log.info(
            "sweep %d/%d loss %.6g holdout rmse %.4f (%.2f s)",
            record.sweep, sweeps, record.loss, metrics["rmse"], record.seconds,
        )  # fmt: skip
    else:
        log.info(
            "sweep %d/%d loss %.6g (%.2f s)", record.sweep, sweeps, record.loss, record.seconds
        )


def _entry(record: SweepRecord) -> dict:
    return {
        "sweep": record.sweep,
        "loss": record.loss,
        "seconds": record.seconds,
        "metrics": record.metrics,
    }


def _record(entry: dict) -> SweepRecord:
    return SweepRecord(entry["sweep"], entry["loss"], entry["seconds"], entry["metrics"])


def _resumed_blocks(params: WALSParams, found: dict | None) -> tuple[int, int] | None:
    """Block counts for a resumed run: those given, else the checkpoint's."""
    if found is None or not found.get("blocks"):
        return None
    users, items = found["blocks"]
    return (params.num_user_blocks or int(users), params.num_item_blocks or int(items))


def _first_line(error: BaseException) -> str:
    from walsspark.errors import first_line

    return first_line(error)[:200]


def _warn_without_checkpoints(spark: SparkSession, checkpointed: bool) -> None:
    """On a cluster, say what losing an executor will cost when nothing is checkpointed."""
    if checkpointed:
        return
    master = conf_value(spark, "spark.master") or ""
    if not master or master.startswith("local"):
        return
    log.warning(
        "no checkpoint directory: an executor lost during training makes it start again "
        "from sweep 1; pass --checkpoint-dir (or set spark.checkpoint.dir) on a file "
        "system all executors and the driver share"
    )


def _rows_fn(rank: int, id_type: pa.DataType):
    """Cogroup function: explode one factor block into per-id rows."""

    def explode(ids: pa.Table, blocks: pa.Table) -> pa.Table:
        if ids.num_rows == 0 or blocks.num_rows == 0:
            return pa.table(
                {"id": pa.array([], id_type), "features": pa.array([], pa.list_(pa.float32()))}
            )
        factors = binary_views(blocks.column("factors"), "<f4")[0].reshape(-1, rank)
        block_ids = ids.column("ids").combine_chunks().flatten()
        features = pa.FixedSizeListArray.from_arrays(
            pa.array(factors.ravel(), pa.float32()), rank
        ).cast(pa.list_(pa.float32()))
        return pa.table({"id": block_ids, "features": features})

    return explode


def factor_rows(side: SideLayout, solved: DataFrame, rank: int) -> DataFrame:
    """Per-id factor rows (``id``, ``features`` array<float>) of a side's solved blocks."""
    id_type = side.rating_blocks.schema["ids"].dataType.elementType
    arrow_type = pa.string() if id_type.simpleString() == "string" else pa.int64()
    return (
        side.rating_blocks.select("block", "ids")
        .groupBy("block")
        .cogroup(
            solved.filter(F.col("kind") == BLOCK_ROW).select("block", "factors").groupBy("block")
        )
        .applyInArrow(_rows_fn(rank, arrow_type), f"id {side.id_type}, features array<float>")
    )


# The columns of a factor block: a block's ids (sorted), its factors (float32 bytes, one row
# per id) and the CSR of its training pairs, whose columns index ``needed_ids`` (ids of the
# other side). walsspark.recommend scores them as they are; the model saves them.
FACTOR_BLOCK_COLUMNS = ("block", "ids", "factors", "indptr", "cols", "needed_ids")


def factor_blocks(side: SideLayout, solved: DataFrame) -> DataFrame:
    """A side's solved factors with its training pairs, one row per block.

    Parameters
    ----------
    side : SideLayout
        The side's rating blocks (ids, CSR, needed ids).
    solved : DataFrame
        The side's last half-sweep output.

    Returns
    -------
    DataFrame
        Columns :data:`FACTOR_BLOCK_COLUMNS`.
    """
    factors = solved.filter(F.col("kind") == BLOCK_ROW).select("block", "factors")
    # One block per partition (the partition keys of the layout): the blocks are scored,
    # and saved one file each, in the partitions they are in.
    return (
        side.rating_blocks.select("block", "ids", "indptr", "cols", "needed_ids")
        .join(factors, "block")
        .select(*FACTOR_BLOCK_COLUMNS)
        .repartition(side.num_blocks, pkey_column(side.pkeys, "block"))
    )
