"""Block-partitioned WALS training on Spark: sweeps, checkpoints, restarts, factor export.

A sweep is a row (user) half-sweep followed by a column (item) half-sweep
(:mod:`walsspark.half_sweep`: routed factors, Gramians, block solves, the loss and the
holdout sums, with no factor matrix reaching the driver). :func:`fit` lays the ratings
out in blocks once (:func:`walsspark.blocks.lay_out`), runs the sweeps, and cuts every
half-sweep's lineage with a local checkpoint; every ``checkpoint_interval`` sweeps, and
after the last, a checkpoint that outlives the executors (a sweep checkpoint,
:mod:`walsspark.sweep_checkpoints`, or Spark's reliable one) is what a sweep that lost
local checkpoints with an executor, or a resumed run, starts again from.
:class:`TrainedFactors` turns the last half-sweeps into per-id factor rows and into the
factor blocks a model saves.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

from pyspark.sql import DataFrame, SparkSession

from walsspark.block_tables import factor_blocks, factor_rows
from walsspark.blocks import SideLayout, lay_out, warm_pairs
from walsspark.cluster import conf_value, default_parallelism
from walsspark.errors import first_line
from walsspark.half_sweep import (
    SOLVED_SCHEMA,
    collect_sweep,
    gramians_on_routes,
    half_sweep,
    holdout_metrics_of,
    initial_factor_blocks,
    materialize,
)
from walsspark.params import WALSParams
from walsspark.popularity import unobserved_norms, with_counts
from walsspark.sweep_checkpoints import (
    SweepCheckpoints,
    data_digest,
    fingerprint,
    lost_local_checkpoint,
)

log = logging.getLogger("walsspark")

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
    # The users' and items' mean(n ** e) of popularity-scaled unobserved weights (1: none).
    unobserved_norms: tuple[float, float] = (1.0, 1.0)

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
    layout: tuple[SideLayout, SideLayout] | None = None,
    confidence_scale: float = 1.0,
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
    layout : (SideLayout, SideLayout), optional
        The ratings already laid out by :func:`lay_out_ratings` (with ``holdout``), so that
        several fits share one layout (``walsspark tune``); its block counts are used.
    confidence_scale : float
        Multiplies every entry's R C c (``walsspark tune`` lays out confidences for
        alpha = 1 and passes each trial's alpha here).

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
        restored = checkpoints.start(wanted, params.sweeps)
    if layout is None:
        users, items = lay_out_ratings(
            ratings, params, holdout if holdout_total else None, num_user_blocks, num_item_blocks
        )
        log.info(
            "laid out %d ratings in %d user blocks and %d item blocks (%.1f s)",
            num_ratings,
            num_user_blocks,
            num_item_blocks,
            time.perf_counter() - start,
        )
    else:
        users, items = layout
        num_user_blocks, num_item_blocks = users.num_blocks, items.num_blocks
    rank = params.rank
    norms = unobserved_norms(users, items, params.unobserved_exponents)
    user_weights = params.user_weights(norms)
    if confidence_scale != 1.0:
        user_weights = replace(user_weights, row_weight=user_weights.row_weight * confidence_scale)
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
        initial_factor_blocks(users, rank, on_routes, user_weights) if cg else None,
        initial_factor_blocks(items, rank, on_routes, item_weights),
        [],
    )
    if restored is not None:
        user_blocks, item_blocks = checkpoints.tables(restored, SOLVED_SCHEMA, checked=True)
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
            user_blocks = materialize(
                half_sweep(
                    users, item_blocks, user_weights, rank, previous_users, params.cg_steps,
                    on_routes,
                ),
                due and reliable_dir is not None,
                eager=True,
            )  # fmt: skip
            item_blocks = materialize(
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
                sweep + 1, first_line(error)[:200],
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
    if sweep > restart[0] and (checkpoints is not None or reliable_dir is not None):
        # Stopped by tol before a due sweep: checkpoint the last one all the same (the
        # model is built from it).
        if checkpoints is not None:
            user_blocks, item_blocks = checkpoints.write(
                sweep, user_blocks, item_blocks, [_entry(r) for r in history[:-1]], wanted,
                SOLVED_SCHEMA, history[-1].seconds,
            )  # fmt: skip
        else:
            user_blocks = user_blocks.checkpoint(eager=True)
            item_blocks = item_blocks.checkpoint(eager=True)
    return TrainedFactors(
        params=params,
        users=users,
        items=items,
        user_factor_blocks=user_blocks,
        item_factor_blocks=item_blocks,
        history=history,
        num_ratings=num_ratings,
        fit_seconds=time.perf_counter() - start,
        unobserved_norms=norms,
    )


def lay_out_ratings(
    ratings: DataFrame,
    params: WALSParams,
    holdout: DataFrame | None,
    num_user_blocks: int,
    num_item_blocks: int,
    with_frequencies: bool = False,
) -> tuple[SideLayout, SideLayout]:
    """The rating blocks :func:`fit` trains on (and scores ``holdout`` in).

    Entries carry their ids' training frequencies when the unobserved weights follow
    popularity, or when ``with_frequencies`` asks for them (a layout that several
    parameter settings share).
    """
    if with_frequencies or any(params.unobserved_exponents):
        ratings, holdout = with_counts(ratings, holdout)
    scorable = warm_pairs(holdout, ratings) if holdout is not None else None
    return lay_out(ratings, num_user_blocks, num_item_blocks, params.seed, scorable)


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
