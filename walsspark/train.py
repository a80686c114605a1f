"""Block-partitioned WALS training on Spark (DataFrame + Arrow APIs only).

A sweep is a row (user) half-sweep followed by a column (item) half-sweep. A half-sweep:

1. The other side's last output holds, besides its factor blocks, one *route* row per
   (source block, destination block): the factors the destination needs, already in the
   destination CSR's column order (the routes were fixed once by ``blocks``), plus the
   source block's k x k Gramian and regularization sum. Only these rows are shuffled, each
   to its destination's partition.
2. Rating blocks and routed factors are cogrouped by partition key
   (``groupBy().cogroup().applyInArrow``): every task adds up the Gramians it received
   (G of the whole fixed side), solves one whole block with
   :func:`walsspark.solver.solve_block` (or, with ``solver="cg"``,
   :func:`walsspark.solver.solve_block_cg`, started from the block's own last factors,
   which arrive as a block row among the routes) and emits the new factor block and its
   own routes.
3. The output is a lazy local checkpoint: the user half-sweep is computed by the job that
   collects the item half-sweep's per-block losses, one Spark job and one scalar per block
   per sweep. No factor matrix, and no Gramian, reaches the driver.

Routing every block's Gramian to every block of the other side costs
B_users * B_items * k^2 * 8 bytes per half-sweep (2 MB at 16 x 16 blocks and rank 64):
small next to the factors themselves, and it saves a driver round trip per half-sweep.

The loss after a sweep needs no dense product: the item half-sweep's tasks hold, for every
observed entry, both the user factors and the new item factors, so each item block
computes ``sum_S [W (a - u.v)^2 - w0 (u.v)^2] + w0 tr(G_U G_block) + sum_j lambda_j |v_j|^2``
over its entries and rows, plus the users' ``sum_i lambda_i |u_i|^2`` routed to it (each
user block sends its sum on one route only), and the driver adds up one number per block.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from walsspark.blocks import SideLayout, lay_out, pkey_column
from walsspark.cluster import default_parallelism
from walsspark.factors import (
    decode_array,
    decode_factors,
    encode_array,
    encode_factors,
    initial_factors,
)
from walsspark.params import WALSParams
from walsspark.solver import (
    CsrBlock,
    ObjectiveWeights,
    gramian,
    solve_block,
    solve_block_cg,
)

log = logging.getLogger("walsspark")

# A half-sweep's output: one "block" row per solved block (kind 0: the whole factor block,
# its Gramian and loss terms) and one "route" row per (block, destination) (kind 1: the
# factors a block of the other side needs, in that block's column order). The routes are
# what the next half-sweep shuffles; the block rows are what is kept and saved.
SOLVED_SCHEMA = (
    "kind byte, block int, dst_pkey int, factors binary, gram binary, loss double, "
    "regularization double"
)
BLOCK_ROW, ROUTE_ROW = 0, 1
_SOLVED_ARROW_SCHEMA = pa.schema(
    [
        ("kind", pa.int8()),
        ("block", pa.int32()),
        ("dst_pkey", pa.int32()),
        ("factors", pa.binary()),
        ("gram", pa.binary()),
        ("loss", pa.float64()),
        ("regularization", pa.float64()),
    ]
)
# Ratings per block the default block count aims at: a block's CSR and padded work arrays
# stay within a few hundred MB of task memory.
TARGET_RATINGS_PER_BLOCK = 2_000_000
MAX_DEFAULT_BLOCKS = 64


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
    more when blocks would outgrow their target size.

    Capped at :data:`MAX_DEFAULT_BLOCKS`: routes grow with the product of the two block
    counts (each carries a k x k Gramian), so hundreds of blocks cost more than they give.
    """
    by_size = -(-num_ratings // TARGET_RATINGS_PER_BLOCK)
    return max(1, min(MAX_DEFAULT_BLOCKS, max(default_parallelism(spark), by_size)))


def _solved_table(block_row: dict, factors: np.ndarray, loss: float, regularization: float):
    """The block row and the route rows of a freshly computed factor block.

    Every row carries the block's Gramian and regularization sum: the block row for the
    driver, the route rows for the blocks of the other side, which need the Gramian of the
    whole fixed side (the sum over its blocks) for their normal equations.
    """
    dst_pkeys = decode_array(block_row["route_dst_pkeys"], "<i4")
    offsets = decode_array(block_row["route_offsets"], "<i8")
    indices = decode_array(block_row["route_indices"], "<i4")
    routes = [
        encode_factors(factors[indices[offsets[r] : offsets[r + 1]]]) for r in range(len(dst_pkeys))
    ]
    n_rows = len(routes) + 1
    # The regularization sum rides on the first non-empty route only, so that the blocks
    # of the other side, adding up what they receive, count it exactly once (a block with
    # ratings always has a non-empty route: whoever rated its rows needs them).
    route_regularization = [0.0] * len(routes)
    non_empty = np.flatnonzero(np.diff(offsets) > 0)
    if len(non_empty):
        route_regularization[int(non_empty[0])] = regularization
    gram = encode_array(gramian(factors).ravel(), "<f8")
    return pa.table(
        {
            "kind": pa.array([BLOCK_ROW] + [ROUTE_ROW] * len(routes), pa.int8()),
            "block": pa.array([int(block_row["block"])] * n_rows, pa.int32()),
            "dst_pkey": pa.array([-1, *dst_pkeys.tolist()], pa.int32()),
            "factors": pa.array([encode_factors(factors), *routes], pa.binary()),
            "gram": pa.array([gram] * n_rows, pa.binary()),
            "loss": pa.array([loss] + [0.0] * len(routes), pa.float64()),
            "regularization": pa.array([regularization, *route_regularization], pa.float64()),
        }
    )


# The rating-block fields a solve reads (not the ids, which would cost a Python object each).
_BLOCK_ROW_FIELDS = (
    "block",
    "indptr",
    "cols",
    "targets",
    "confidences",
    "init_hashes",
    "route_dst_pkeys",
    "route_offsets",
    "route_indices",
)


def _initial_fn(rank: int):
    """mapInArrow function: initial factor blocks (and their routes) from the id hashes."""

    def init(batches):
        for batch in batches:
            for row in batch.select(list(_BLOCK_ROW_FIELDS)).to_pylist():
                factors = initial_factors(decode_array(row["init_hashes"], "<i8"), rank)
                yield from _solved_table(row, factors, 0.0, 0.0).to_batches()

    return init


def initial_factor_blocks(side: SideLayout, rank: int) -> DataFrame:
    """Initial factors of a side, as a half-sweep's output (blocks and routes)."""
    return _materialize(side.rating_blocks.mapInArrow(_initial_fn(rank), SOLVED_SCHEMA))


def csr_from_row(row: dict) -> CsrBlock:
    """A :class:`CsrBlock` from one rating-block row (as produced by ``blocks``)."""
    confidences = row.get("confidences")
    return CsrBlock(
        indptr=decode_array(row["indptr"], "<i8"),
        cols=decode_array(row["cols"], "<i4"),
        targets=decode_array(row["targets"], "<f4"),
        confidences=None if confidences is None else decode_array(confidences, "<f4"),
    )


def _solve_fn(rank: int, weights: ObjectiveWeights, solver: str = "exact", cg_steps: int = 3):
    """Cogroup function: solve one rating block against the factors routed to it.

    With ``solver="cg"`` the block's own factors of the last sweep arrive too (a
    ``BLOCK_ROW`` among the routes) as the conjugate gradient's starting point.
    """

    def solve(ratings: pa.Table, received: pa.Table) -> pa.Table:
        if ratings.num_rows == 0:
            # Routes go to every block number; a block whose ids all hashed elsewhere has
            # no ratings (more blocks than ids) and nothing to solve.
            return _SOLVED_ARROW_SCHEMA.empty_table()
        row = ratings.select(list(_BLOCK_ROW_FIELDS)).slice(0, 1).to_pylist()[0]
        block = csr_from_row(row)
        is_route = received.column("kind").to_numpy() == ROUTE_ROW
        routed = received.filter(pa.array(is_route))
        previous = received.filter(pa.array(~is_route))
        # Every block of the fixed side sends one route here: concatenated in source-block
        # order the pieces are exactly this block's needed list (which the CSR columns
        # index), and their Gramians add up to the fixed side's Gramian.
        order = np.argsort(routed.column("block").to_numpy(), kind="stable")
        chunks = routed.column("factors").to_pylist()
        other = np.vstack([decode_factors(chunks[i], rank) for i in order])
        grams = routed.column("gram").to_pylist()
        fixed_gram = np.sum([decode_array(g, "<f8") for g in grams], axis=0).reshape(rank, rank)
        if solver == "cg" and previous.num_rows:
            start = decode_factors(previous.column("factors")[0].as_py(), rank)
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
        return _solved_table(row, solution.factors, loss, solution.regularization_loss)

    return solve


def half_sweep(
    solving: SideLayout,
    fixed_solved: DataFrame,
    weights: ObjectiveWeights,
    rank: int,
    previous: DataFrame | None = None,
    cg_steps: int = 3,
) -> DataFrame:
    """Solve every block of ``solving`` against the other side's last output (lazy).

    Only the route rows of ``fixed_solved`` are shuffled, each to the one block that needs
    it; the rating blocks are already partitioned by ``pkey`` and do not move. With
    ``previous`` (the side's own last output) the blocks are solved by conjugate gradient
    from their previous factors, each block row sent back to its own block.
    """
    columns = ["kind", "dst_pkey", "block", "factors", "gram", "regularization"]
    routed = fixed_solved.filter(F.col("kind") == ROUTE_ROW).select(*columns)
    if previous is not None:
        own = previous.filter(F.col("kind") == BLOCK_ROW).withColumn(
            "dst_pkey", pkey_column(solving.pkeys, "block")
        )
        routed = routed.unionByName(own.select(*columns))
    solve = _solve_fn(rank, weights, "exact" if previous is None else "cg", cg_steps)
    return (
        solving.rating_blocks.groupBy("pkey")
        .cogroup(routed.repartition(solving.num_blocks, "dst_pkey").groupBy("dst_pkey"))
        .applyInArrow(solve, SOLVED_SCHEMA)
    )


def collect_loss(solved: DataFrame) -> float:
    """Compute a half-sweep (and what it depends on) and return the loss after it."""
    rows = solved.filter(F.col("kind") == BLOCK_ROW).select("loss").collect()
    return float(sum(row["loss"] for row in rows))


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
    """The reliable checkpoint directory the session was started with, if any."""
    try:
        return spark.conf.get("spark.checkpoint.dir", None) or None
    except Exception:  # noqa: BLE001 - not every key is readable on every runtime
        return None


def fit(
    spark: SparkSession,
    ratings: DataFrame,
    params: WALSParams,
    on_sweep: Callable[[SideLayout, DataFrame, SideLayout, DataFrame], dict] | None = None,
) -> TrainedFactors:
    """Train user and item factors.

    Parameters
    ----------
    spark : SparkSession
    ratings : DataFrame
        Validated ratings with columns ``user``, ``item``, ``rating``, one row per pair.
    params : WALSParams
        Besides the objective: ``solver`` (exact or CG), ``tol`` (stop once a sweep changes
        the loss by a smaller fraction).
    on_sweep : callable, optional
        Called after every sweep with (users, user blocks, items, item blocks); what it
        returns is recorded as the sweep's ``metrics`` (e.g. holdout metrics).

    Returns
    -------
    TrainedFactors
    """
    params.validate()
    start = time.perf_counter()
    num_ratings = ratings.count()
    num_user_blocks = params.num_user_blocks or default_num_blocks(spark, num_ratings)
    num_item_blocks = params.num_item_blocks or default_num_blocks(spark, num_ratings)
    users, items = lay_out(ratings, num_user_blocks, num_item_blocks, params.seed)
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

    reliable_dir = checkpoint_dir(spark)
    item_blocks = initial_factor_blocks(items, rank)
    cg = params.solver == "cg"
    # CG starts every block from its last factors: the users' first start is their
    # initial factors (a function of seed and id, like the items').
    user_blocks = initial_factor_blocks(users, rank) if cg else None
    history: list[SweepRecord] = []
    for sweep in range(1, params.sweeps + 1):
        sweep_start = time.perf_counter()
        # Every checkpoint_interval sweeps, a reliable checkpoint when a directory is set
        # (MLlib's checkpointInterval); otherwise the executors' local checkpoints.
        reliable = reliable_dir is not None and sweep % params.checkpoint_interval == 0
        previous_users, previous_items = (user_blocks, item_blocks) if cg else (None, None)
        user_blocks = _materialize(
            half_sweep(users, item_blocks, user_weights, rank, previous_users, params.cg_steps),
            reliable,
        )
        item_blocks = _materialize(
            half_sweep(items, user_blocks, item_weights, rank, previous_items, params.cg_steps),
            reliable,
        )
        # One Spark job per sweep: collecting the item half-sweep's loss runs both halves.
        loss = collect_loss(item_blocks)
        seconds = time.perf_counter() - sweep_start
        history.append(SweepRecord(sweep, loss, seconds))
        log.info("sweep %d/%d loss %.6g (%.2f s)", sweep, params.sweeps, loss, seconds)
        if on_sweep is not None:
            history[-1].metrics = on_sweep(users, user_blocks, items, item_blocks)
        if params.tol > 0 and len(history) > 1:
            before = history[-2].loss
            change = abs(before - loss) / max(abs(before), 1e-300)
            if change < params.tol:
                log.info("relative loss change %.3g < tol %g: stopping", change, params.tol)
                break
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


def _rows_fn(rank: int, id_type: pa.DataType):
    """Cogroup function: explode one factor block into per-id rows."""

    def explode(ids: pa.Table, blocks: pa.Table) -> pa.Table:
        if ids.num_rows == 0 or blocks.num_rows == 0:
            return pa.table(
                {"id": pa.array([], id_type), "features": pa.array([], pa.list_(pa.float32()))}
            )
        factors = decode_factors(blocks.column("factors")[0].as_py(), rank)
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
