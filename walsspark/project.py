"""Fold-in (projection): factors for rows the model has not seen, without retraining.

A new user's factors solve the training row update against the trained item factors:

    (w0 G + lambda_i I + sum_{j in S_i} (W_ij - w0) v_j v_j^T) u_i = sum_{j in S_i} W_ij a_ij v_j

with G = V^T V over all trained items, the model's w0, weights and lambda_i =
lambda (n_i + O)^nu, i.e. exactly :func:`walsspark.solver.solve_block`. With
popularity-scaled unobserved weights, the fixed side's factors carry their training
frequency (``count``), and so do the new ratings (``other_count``): G becomes
sum_j t_j v_j v_j^T and the new row's own scale follows from its number of ratings, as
in training. ``--for items`` projects new items against the trained user factors the same
way (row and column weights swapped).

How it runs (the block-pair path of ``recommend`` and of training): the fixed side's factors
are packed into blocks of at most ``max_fixed_bytes`` (one block when they fit), and the new
rows into blocks sized by the number of new ratings. Each fixed block receives, per block
of new rows, the list of its ids that block rated, and sends back only those factors (a
*route*); each block of new rows then maps its ratings to the routed rows, builds its CSR
and solves all its rows with one batched call. The fixed side's Gramian G is summed on the
executors per partition and added up in partition order on the driver (k x k numbers).
No task holds more than one fixed block or more factors than its rows rated, and nothing
data-sized passes through the driver.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from walsspark.blocks import partition_keys, pkey_column
from walsspark.cluster import default_parallelism
from walsspark.factors import binary_views, encode_array, encode_factors
from walsspark.recommend import MAX_CANDIDATE_BYTES, _features_matrix, _pack_candidates_fn
from walsspark.solver import (
    CsrBlock,
    ObjectiveWeights,
    popularity_scales,
    solve_block,
    weighted_gramian,
)

# New ratings per block of new rows the default block count aims at (as training's).
TARGET_NEW_RATINGS_PER_BLOCK = 2_000_000


def _gramian_fn(rank: int, weights: ObjectiveWeights | None):
    """mapInArrow function: the partial Gramian of one partition's factor rows (weighted
    by the popularity scales t_j of their ``count`` column when there is one)."""

    def partial(batches):
        total = np.zeros((rank, rank), dtype=np.float64)
        for batch in batches:
            if batch.num_rows:
                features = _features_matrix(pa.chunked_array([batch.column("features")]), rank)
                scales = None
                if weights is not None and "count" in batch.schema.names:
                    scales = popularity_scales(
                        batch.column("count").to_numpy(zero_copy_only=False),
                        weights.col_unobserved_exponent,
                        weights.col_unobserved_norm,
                    )
                total += weighted_gramian(features, scales)
        yield pa.RecordBatch.from_pydict({"gram": [encode_array(total.ravel(), "<f8")]})

    return partial


def fixed_gramian(
    fixed_factors: DataFrame, rank: int, weights: ObjectiveWeights | None = None
) -> np.ndarray:
    """G = F^T F of a side's per-id factors: partial sums per partition, added in order.

    With a ``count`` column (the ids' training frequencies) and ``weights`` (seen from the
    rows solved against this side), G_t = sum_j t_j f_j f_j^T with t_j the popularity scales
    of :func:`walsspark.solver.popularity_scales` (None when they are all 1).
    """
    columns = ["features", *(["count"] if "count" in fixed_factors.columns else [])]
    gramian_fn = _gramian_fn(rank, weights)
    partials = fixed_factors.select(*columns).mapInArrow(gramian_fn, "gram binary")
    total = np.zeros(rank * rank, dtype=np.float64)
    for row in partials.collect():  # partition order: the same sum on every run
        total += np.frombuffer(row["gram"], dtype="<f8")
    return total.reshape(rank, rank)


def _route_fn(rank: int, other_type: pa.DataType):
    """Cogroup function: a fixed block's factors for each block of new rows that rated it."""

    def route(block: pa.Table, requests: pa.Table) -> pa.Table:
        empty = pa.table(
            {
                "rblock": pa.array([], pa.int32()),
                "cblock": pa.array([], pa.int32()),
                "route_ids": pa.array([], pa.list_(other_type)),
                "route_factors": pa.array([], pa.binary()),
            }
        )
        if block.num_rows == 0 or requests.num_rows == 0:
            return empty  # ids nobody knows, or a block nobody rated
        ids = block.column("cand_ids")[0].values
        factors = binary_views(block.column("cand_factors"), "<f4")[0].reshape(-1, rank)
        rblocks = requests.column("rblock").to_numpy()
        wanted = pc.fill_null(pc.index_in(requests.column("other"), value_set=ids), -1)
        wanted = wanted.to_numpy(zero_copy_only=False).astype(np.int64)
        known = wanted >= 0
        rows_out, ids_out, factors_out = [], [], []
        for target in np.unique(rblocks):
            positions = wanted[(rblocks == target) & known].astype(np.int64)
            positions = np.unique(positions)  # id order within the block (ids are sorted)
            if len(positions) == 0:
                continue
            rows_out.append(int(target))
            ids_out.append(ids.take(pa.array(positions)))
            factors_out.append(encode_factors(factors[positions]))
        if not rows_out:
            return empty
        cblock = int(block.column("cblock")[0].as_py())
        lengths = np.cumsum([0] + [len(x) for x in ids_out]).astype(np.int32)
        return pa.table(
            {
                "rblock": pa.array(rows_out, pa.int32()),
                "cblock": pa.array([cblock] * len(rows_out), pa.int32()),
                "route_ids": pa.ListArray.from_arrays(
                    pa.array(lengths), pa.concat_arrays(ids_out).cast(other_type)
                ),
                "route_factors": pa.array(factors_out, pa.binary()),
            }
        )

    return route


def _project_fn(rank: int, weights: ObjectiveWeights, gram: np.ndarray, row_type: pa.DataType):
    """Cogroup function: project one block of new rows against the factors routed to it."""

    def project(ratings: pa.Table, routes: pa.Table) -> pa.Table:
        if ratings.num_rows == 0:
            return pa.table(
                {
                    "id": pa.array([], row_type),
                    "features": pa.array([], pa.list_(pa.float32())),
                    "rated": pa.array([], pa.int64()),
                }
            )
        order = np.argsort(routes.column("cblock").to_numpy(), kind="stable")
        routes = routes.take(pa.array(order, pa.int64()))
        pieces = binary_views(routes.column("route_factors"), "<f4")
        fixed = (
            np.concatenate([piece.reshape(-1, rank) for piece in pieces])
            if pieces
            else np.zeros((0, rank), dtype=np.float32)
        )
        # Each rating's column: its id's position in the route of its fixed block, offset
        # by the routes before it; -1 for ids the model does not know.
        cblocks = ratings.column("cblock").to_numpy()
        others = ratings.column("other")
        cols = np.full(ratings.num_rows, -1, dtype=np.int64)
        start = 0
        for index in range(routes.num_rows):
            ids = routes.column("route_ids")[index].values
            mask = cblocks == routes.column("cblock")[index].as_py()
            found = pc.index_in(others.filter(pa.array(mask)), value_set=ids)
            found = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            cols[mask] = np.where(found >= 0, found + start, -1)
            start += len(ids)
        return _solve_rows(ratings, cols, fixed, gram, weights, rank)

    return project


def _solve_rows(
    ratings: pa.Table,
    cols: np.ndarray,
    fixed: np.ndarray,
    gram: np.ndarray,
    weights: ObjectiveWeights,
    rank: int,
) -> pa.Table:
    """CSR of one block of new rows (ratings of unknown ids dropped) and its solution."""
    targets = ratings.column("rating").to_numpy(zero_copy_only=False)
    confidences = other_counts = None
    if "confidence" in ratings.column_names:
        confidences = ratings.column("confidence").to_numpy(zero_copy_only=False)
    if "other_count" in ratings.column_names:
        other_counts = ratings.column("other_count").to_numpy(zero_copy_only=False)
    known = cols >= 0  # ratings of ids the model does not know carry no information here
    encoded = pc.dictionary_encode(ratings.column("row").combine_chunks())
    ids_in_order, rows = encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False)
    n = len(ids_in_order)
    rows, cols, targets = rows[known], cols[known].astype(np.int32), targets[known]
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    if confidences is not None:
        confidences = confidences[known][order].astype(np.float32)
    if other_counts is not None:
        other_counts = other_counts[known][order].astype(np.float32)
    block = CsrBlock(
        indptr, cols[order], targets[order].astype(np.float32), confidences, other_counts
    )
    solution = solve_block(block, fixed, gram, weights)
    features = pa.FixedSizeListArray.from_arrays(
        pa.array(solution.factors.ravel(), pa.float32()), rank
    ).cast(pa.list_(pa.float32()))
    return pa.table(
        {"id": ids_in_order, "features": features, "rated": pa.array(block.counts, pa.int64())}
    )


def project(
    new_ratings: DataFrame,
    fixed_factors: DataFrame,
    rank: int,
    weights: ObjectiveWeights,
    num_blocks: int | None = None,
    max_fixed_bytes: int = MAX_CANDIDATE_BYTES,
    num_fixed: int | None = None,
) -> DataFrame:
    """Project new rows against trained factors.

    Parameters
    ----------
    new_ratings : DataFrame
        ``row`` (the new ids), ``other`` (ids of the trained side), ``rating`` (the target)
        and, for models with per-entry weights, ``confidence``
        (:func:`walsspark.weighting.entry_weights`); with popularity-scaled unobserved
        weights, ``other_count`` (the fixed id's training frequency).
    fixed_factors : DataFrame
        ``id``, ``features`` of the trained side; with popularity-scaled unobserved
        weights, ``count`` (each id's training frequency).
    rank : int
    weights : ObjectiveWeights
        The objective seen from the rows being projected.
    num_blocks : int, optional
        Blocks of new rows (tasks); default: the cluster's task slots, more when blocks
        would exceed :data:`TARGET_NEW_RATINGS_PER_BLOCK` new ratings.
    max_fixed_bytes : int
        Upper bound on the factors of one fixed block (as ``recommend``'s candidate bound).
    num_fixed : int, optional
        Number of fixed ids when known (the model's metadata); counted otherwise.

    Returns
    -------
    DataFrame
        ``id``, ``features`` array<float>, ``rated`` (ratings of known ids used; a row
        whose rated ids are all unknown to the model gets zero factors).
    """
    spark = new_ratings.sparkSession
    row_type = new_ratings.schema["row"].dataType.simpleString()
    other_type = fixed_factors.schema["id"].dataType.simpleString()
    arrow_row = pa.string() if row_type == "string" else pa.int64()
    arrow_other = pa.string() if other_type == "string" else pa.int64()
    if num_fixed is None:
        num_fixed = fixed_factors.count()
    num_fixed_blocks = max(1, math.ceil(num_fixed * rank * 4 / max_fixed_bytes))
    if num_blocks is None:
        by_size = math.ceil(new_ratings.count() / TARGET_NEW_RATINGS_PER_BLOCK)
        num_blocks = max(1, default_parallelism(spark), by_size)
    gram = fixed_gramian(fixed_factors, rank, weights)

    def fixed_block_of(column: str):
        return F.pmod(F.xxhash64(F.col(column).cast(other_type)), F.lit(num_fixed_blocks))

    fixed_blocks = (
        fixed_factors.select("id", "features")
        .withColumn("cblock", fixed_block_of("id").cast("int"))
        .repartition(num_fixed_blocks, "cblock")
        .groupBy("cblock")
        .applyInArrow(
            _pack_candidates_fn(rank, arrow_other),
            f"cblock int, cand_ids array<{other_type}>, cand_factors binary",
        )
    )
    # Block b of new rows under a key that hash partitioning sends to partition b.
    keys = partition_keys(num_blocks)
    columns = ["row", F.col("other").cast(other_type).alias("other"), "rating"]
    columns += [c for c in ("confidence", "other_count") if c in new_ratings.columns]
    ratings = new_ratings.select(
        *columns,
        pkey_column(keys, F.pmod(F.xxhash64("row"), F.lit(num_blocks)).cast("int")).alias("rblock"),
        fixed_block_of("other").cast("int").alias("cblock"),
    )
    requests = ratings.select("rblock", "cblock", "other").distinct()
    routes = (
        fixed_blocks.groupBy("cblock")
        .cogroup(requests.groupBy("cblock"))
        .applyInArrow(
            _route_fn(rank, arrow_other),
            f"rblock int, cblock int, route_ids array<{other_type}>, route_factors binary",
        )
    )
    # Explicit repartitions: AQE would coalesce a plain cogroup's shuffle into one task.
    return (
        ratings.repartition(num_blocks, "rblock")
        .groupBy("rblock")
        .cogroup(routes.repartition(num_blocks, "rblock").groupBy("rblock"))
        .applyInArrow(
            _project_fn(rank, weights, gram, arrow_row),
            f"id {row_type}, features array<float>, rated long",
        )
    )
