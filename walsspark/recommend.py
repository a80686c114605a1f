"""Batch top-K on Spark: the K best items for every user, or the K best users for every item.

Both directions are one code path with the roles swapped: the *query* side (users for
``--for users``, the TF estimator's ``project_row``) is scored against the *candidate* side.

How it runs
-----------
1. Candidates are packed into C blocks (one row each: ids sorted, factors as float32 bytes).
   C = 1 while the candidate factors fit in ``max_candidate_bytes``: the single block is
   broadcast-joined to every query block, i.e. shipped once to every task. Beyond that, the
   candidates are split by ``pmod(xxhash64(id), C)`` and every (query block, candidate
   block) pair is scored; the partial top-Ks are merged per query block afterwards.
2. Queries are packed into blocks the same way, each with the ids its queries already rated
   (exclusion), so a task handles one query block against one candidate block with
   :func:`walsspark.topk.top_k`: one matrix multiply per chunk of queries and a
   group-maximum bound that leaves few entries to sort, memory bounded by the chunk, not
   by the number of queries. :func:`recommend_from_blocks` skips the packing: training's
   factor blocks already hold each query block's factors and training pairs.
3. Output: one row per query id with ``recommendations``, an array of {id, score} in
   descending score order, ties broken by id.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from walsspark.blocks import partition_keys, pkey_column
from walsspark.factors import (
    binary_views,
    encode_array,
    encode_factors,
)
from walsspark.topk import top_k

# Candidate factors up to this size are shipped whole to every task (one candidate block).
MAX_CANDIDATE_BYTES = 256 * 1024 * 1024


def _arrow_type(spark_type: str) -> pa.DataType:
    return pa.string() if spark_type == "string" else pa.int64()


def _pack_candidates_fn(rank: int, id_type: pa.DataType):
    def pack(table: pa.Table) -> pa.Table:
        order = pc.sort_indices(table, sort_keys=[("id", "ascending")])
        ordered = table.take(order)
        factors = _features_matrix(ordered.column("features"), rank)
        return pa.table(
            {
                "cblock": pa.array([ordered.column("cblock")[0].as_py()], pa.int32()),
                "cand_ids": pa.ListArray.from_arrays(
                    pa.array([0, ordered.num_rows], pa.int32()),
                    ordered.column("id").combine_chunks().cast(id_type),
                ),
                "cand_factors": pa.array([encode_factors(factors)], pa.binary()),
            }
        )

    return pack


def _pack_all_candidates_fn(rank: int, id_type: pa.DataType):
    """mapInArrow function over one partition: all its candidates as one block."""
    pack = _pack_candidates_fn(rank, id_type)

    def pack_all(batches):
        batches = [batch for batch in batches if batch.num_rows]
        if batches:
            yield from pack(pa.Table.from_batches(batches)).to_batches()

    return pack_all


def _pack_queries_fn(rank: int, id_type: pa.DataType, cand_type: pa.DataType):
    """Cogroup function: one query block, with the candidates each query already rated."""

    def pack(queries: pa.Table, seen: pa.Table) -> pa.Table:
        if queries.num_rows == 0:  # seen pairs of queries that are not asked for
            return _empty_query_block(id_type, cand_type)
        query_ids = queries.column("id").combine_chunks().cast(id_type)
        factors = _features_matrix(queries.column("features"), rank)
        row = pc.fill_null(pc.index_in(seen.column("query"), value_set=query_ids), -1)
        row = row.to_numpy(zero_copy_only=False)
        keep = np.flatnonzero(row >= 0)
        order = keep[np.argsort(row[keep], kind="stable")]
        offsets = np.zeros(len(query_ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(row[keep], minlength=len(query_ids)), out=offsets[1:])
        # Each distinct seen candidate once, the CSR columns pointing into that list: the
        # same shape as a training block's needed list (see query_blocks_from_layout).
        seen_values = seen.column("candidate").combine_chunks().cast(cand_type).take(order)
        encoded = pc.dictionary_encode(seen_values)
        return pa.table(
            {
                "qblock": pa.array([queries.column("qblock")[0].as_py()], pa.int32()),
                "query_ids": _one_list(query_ids),
                "query_factors": pa.array([encode_factors(factors)], pa.binary()),
                "seen_offsets": pa.array([encode_array(offsets, "<i8")], pa.binary()),
                "seen_cols": pa.array(
                    [encode_array(encoded.indices.to_numpy(zero_copy_only=False), "<i4")],
                    pa.binary(),
                ),
                "seen_ids": _one_list(encoded.dictionary),
            }
        )

    return pack


def _one_list(values: pa.Array) -> pa.Array:
    """A one-row list array holding ``values``."""
    return pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), values)


def _empty_query_block(id_type: pa.DataType, cand_type: pa.DataType) -> pa.Table:
    return pa.table(
        {
            "qblock": pa.array([], pa.int32()),
            "query_ids": pa.array([], pa.list_(id_type)),
            "query_factors": pa.array([], pa.binary()),
            "seen_offsets": pa.array([], pa.binary()),
            "seen_cols": pa.array([], pa.binary()),
            "seen_ids": pa.array([], pa.list_(cand_type)),
        }
    )


def _features_matrix(features: pa.ChunkedArray, rank: int) -> np.ndarray:
    values = pc.list_flatten(features.combine_chunks()).to_numpy(zero_copy_only=False)
    return values.astype(np.float32).reshape(-1, rank)


def _score_pairs_fn(rank: int, k: int, id_type: pa.DataType, cand_type: pa.DataType):
    """mapInArrow function: top-K of one query block against one candidate block."""

    def score(batches):
        for batch in batches:
            for row in range(batch.num_rows):
                yield _score_pair(batch.slice(row, 1), rank, k, id_type, cand_type)

    return score


def _score_pair(pair: pa.RecordBatch, rank, k, id_type, cand_type) -> pa.RecordBatch:
    query_ids = pair.column("query_ids")[0].values
    cand_ids = pair.column("cand_ids")[0].values
    # The candidates are the largest value of a task (up to the candidate bound): read in
    # place, not copied into Python bytes.
    query = binary_views(pair.column("query_factors"), "<f4")[0].reshape(-1, rank)
    candidates = binary_views(pair.column("cand_factors"), "<f4")[0].reshape(-1, rank)
    exclude_indptr = exclude_cols = None
    offsets = binary_views(pair.column("seen_offsets"), "<i8")[0]
    if offsets is not None:  # null: nothing excluded (--include-seen)
        seen_cols = binary_views(pair.column("seen_cols"), "<i4")[0]
        # Position of each distinct seen id among this block's candidates (-1: elsewhere),
        # then of every seen pair through its column.
        seen_ids = pair.column("seen_ids")[0].values
        position = pc.fill_null(pc.index_in(seen_ids, value_set=cand_ids), -1).to_numpy()
        seen_index = position[seen_cols]
        seen_rows = np.repeat(np.arange(len(query_ids)), np.diff(offsets))
        in_block = seen_index >= 0
        exclude_indptr = np.zeros(len(query_ids) + 1, dtype=np.int64)
        np.cumsum(
            np.bincount(seen_rows[in_block], minlength=len(query_ids)), out=exclude_indptr[1:]
        )
        # seen_rows is ascending (rows in order), so the CSR columns are in place.
        exclude_cols = seen_index[in_block].astype(np.int32)
    indices, scores, counts = top_k(query, candidates, k, exclude_indptr, exclude_cols)
    valid = indices >= 0
    flat_index = indices[valid]
    return pa.RecordBatch.from_pydict(
        {
            "qblock": pa.array(
                np.full(len(query_ids), pair.column("qblock")[0].as_py()), pa.int32()
            ),
            "id": query_ids,
            "rec_ids": pa.ListArray.from_arrays(
                pa.array(_offsets(counts), pa.int32()), cand_ids.take(pa.array(flat_index))
            ),
            "rec_scores": pa.ListArray.from_arrays(
                pa.array(_offsets(counts), pa.int32()), pa.array(scores[valid], pa.float32())
            ),
        }
    )


def _offsets(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _merge_fn(k: int):
    """Merge the partial top-Ks of one query block (one per candidate block)."""

    def merge(table: pa.Table) -> pa.Table:
        ids = table.column("id").combine_chunks()
        rec_ids = pc.list_flatten(table.column("rec_ids").combine_chunks())
        rec_scores = pc.list_flatten(table.column("rec_scores").combine_chunks())
        lengths = pc.list_value_length(table.column("rec_ids").combine_chunks()).to_numpy()
        owner = np.repeat(np.arange(len(ids)), lengths)
        # Group partial rows by query id, then order each query's candidates by
        # (-score, id); id ranks make the tie-break work for string ids too.
        _, query_rank = np.unique(ids.to_numpy(zero_copy_only=False), return_inverse=True)
        _, cand_rank = np.unique(rec_ids.to_numpy(zero_copy_only=False), return_inverse=True)
        scores = rec_scores.to_numpy(zero_copy_only=False)
        order = np.lexsort((cand_rank, -scores, query_rank[owner]))
        grouped_query = query_rank[owner][order]
        position = np.arange(len(order)) - np.searchsorted(grouped_query, grouped_query)
        chosen = order[position < k]
        chosen_query = query_rank[owner][chosen]
        first_row = np.unique(query_rank, return_index=True)[1]
        counts = np.bincount(chosen_query, minlength=len(first_row))
        offsets = pa.array(_offsets(counts), pa.int32())
        return pa.table(
            {
                "id": ids.take(pa.array(first_row)),
                "rec_ids": pa.ListArray.from_arrays(offsets, rec_ids.take(pa.array(chosen))),
                "rec_scores": pa.ListArray.from_arrays(offsets, rec_scores.take(pa.array(chosen))),
            }
        )

    return merge


def recommend(
    spark: SparkSession,
    query_factors: DataFrame,
    candidate_factors: DataFrame,
    k: int,
    rank: int,
    seen: DataFrame | None = None,
    num_query_blocks: int | None = None,
    max_candidate_bytes: int = MAX_CANDIDATE_BYTES,
    num_candidates: int | None = None,
) -> DataFrame:
    """Top-K candidates for every query id.

    Parameters
    ----------
    query_factors, candidate_factors : DataFrame
        ``id``, ``features`` (array<float>) of the side asking and the side ranked.
    k : int
        Candidates per query (fewer when fewer remain after exclusion; no padding).
    rank : int
    seen : DataFrame, optional
        ``query``, ``candidate`` pairs to exclude (the training ratings).
    num_query_blocks : int, optional
        Query blocks (tasks); default: Spark's shuffle partitions.
    max_candidate_bytes : int
        Candidate factors up to this size are shipped whole to every task; beyond it the
        candidates are split into blocks and partial top-Ks are merged.
    num_candidates : int, optional
        Number of candidate ids when known (e.g. from the model's metadata); counted
        otherwise, which costs a Spark job.

    Returns
    -------
    DataFrame
        ``id``, ``recommendations`` array<struct<id, score: float>>, descending score,
        ties broken by id.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    query_type = query_factors.schema["id"].dataType.simpleString()
    cand_type = candidate_factors.schema["id"].dataType.simpleString()
    q_arrow, c_arrow = _arrow_type(query_type), _arrow_type(cand_type)
    if num_candidates is None:
        num_candidates = candidate_factors.count()
    num_cand_blocks = max(1, math.ceil(num_candidates * rank * 4 / max_candidate_bytes))
    if num_query_blocks is None:
        num_query_blocks = int(spark.conf.get("spark.sql.shuffle.partitions", "2") or 2)

    cand_schema = f"cblock int, cand_ids array<{cand_type}>, cand_factors binary"
    if num_cand_blocks == 1:
        # One block: a single task packs all candidates. repartition(1), not coalesce(1):
        # coalesce would pull whatever computes the factors (a Parquet scan, a join) into
        # that one task; the shuffle keeps it parallel and moves only the small factors.
        cand_blocks = (
            candidate_factors.withColumn("cblock", F.lit(0))
            .repartition(1)
            .mapInArrow(_pack_all_candidates_fn(rank, c_arrow), cand_schema)
        )
    else:
        cand_blocks = (
            candidate_factors.withColumn(
                "cblock", F.pmod(F.xxhash64("id"), F.lit(num_cand_blocks)).cast("int")
            )
            .groupBy("cblock")
            .applyInArrow(_pack_candidates_fn(rank, c_arrow), cand_schema)
        )

    # Query block b is grouped under a key that Spark's hash partitioning sends to
    # partition b (as in training): with the block number itself, two blocks often share
    # a partition and one task scores both while the other core idles.
    query_keys = partition_keys(num_query_blocks)

    def by_query_block(frame: DataFrame, id_column: str) -> DataFrame:
        block = F.pmod(F.xxhash64(id_column), F.lit(num_query_blocks)).cast("int")
        return frame.withColumn("qblock", pkey_column(query_keys, block)).repartition(
            num_query_blocks, "qblock"
        )

    query_schema = (
        f"qblock int, query_ids array<{query_type}>, query_factors binary, "
        f"seen_offsets binary, seen_cols binary, seen_ids array<{cand_type}>"
    )
    pack = _pack_queries_fn(rank, q_arrow, c_arrow)
    if seen is None:
        # Nothing to exclude: no seen side to shuffle, sort and cogroup.
        no_seen = pa.table({"query": pa.array([], q_arrow), "candidate": pa.array([], c_arrow)})
        query_blocks = (
            by_query_block(query_factors, "id")
            .groupBy("qblock")
            .applyInArrow(lambda queries: pack(queries, no_seen), query_schema)
        )
    else:
        # Queries and their seen pairs meet by query block: no per-query lists, no join.
        query_blocks = (
            by_query_block(query_factors, "id")
            .groupBy("qblock")
            .cogroup(by_query_block(seen.select("query", "candidate"), "query").groupBy("qblock"))
            .applyInArrow(pack, query_schema)
        )
    return _score_blocks(
        query_blocks, cand_blocks, num_cand_blocks > 1, k, rank, query_type, cand_type
    )


def _score_blocks(
    query_blocks: DataFrame,
    cand_blocks: DataFrame,
    several_candidate_blocks: bool,
    k: int,
    rank: int,
    query_type: str,
    cand_type: str,
) -> DataFrame:
    """Score every (query block, candidate block) pair; merge partial top-Ks if needed.

    One candidate block is broadcast (shipped once to every task); several are
    cross-joined with the query blocks and each query block's partial top-Ks merged.
    """
    q_arrow, c_arrow = _arrow_type(query_type), _arrow_type(cand_type)
    pairs = query_blocks.crossJoin(
        cand_blocks if several_candidate_blocks else F.broadcast(cand_blocks)
    )
    partial_schema = (
        f"qblock int, id {query_type}, rec_ids array<{cand_type}>, rec_scores array<float>"
    )
    partial = pairs.mapInArrow(_score_pairs_fn(rank, k, q_arrow, c_arrow), partial_schema)
    if several_candidate_blocks:
        partial = partial.groupBy("qblock").applyInArrow(
            _merge_fn(k), f"id {query_type}, rec_ids array<{cand_type}>, rec_scores array<float>"
        )
    return partial.select(
        "id",
        F.arrays_zip(F.col("rec_ids").alias("id"), F.col("rec_scores").alias("score")).alias(
            "recommendations"
        ),
    )


def _merge_blocks_fn(rank: int, id_type: pa.DataType):
    """mapInArrow function: all factor blocks of one partition as one block, ids sorted."""

    def merge(batches):
        tables = [pa.Table.from_batches([batch]) for batch in batches if batch.num_rows]
        if not tables:
            return
        table = pa.concat_tables(tables)
        ids = pc.list_flatten(table.column("cand_ids").combine_chunks()).cast(id_type)
        factors = np.vstack(
            [blob.reshape(-1, rank) for blob in binary_views(table.column("cand_factors"), "<f4")]
        )
        order = pc.sort_indices(ids)
        yield pa.RecordBatch.from_pydict(
            {
                "cblock": pa.array([0], pa.int32()),
                "cand_ids": _one_list(ids.take(order)),
                "cand_factors": pa.array([encode_factors(factors[order.to_numpy()])], pa.binary()),
            }
        )

    return merge


def recommend_from_blocks(
    query_blocks: DataFrame,
    candidate_blocks: DataFrame,
    k: int,
    rank: int,
    num_candidates: int,
    exclude_seen: bool = True,
    max_candidate_bytes: int = MAX_CANDIDATE_BYTES,
) -> DataFrame:
    """Top-K candidates for every query id, from the factor blocks training left.

    A factor block (see :func:`walsspark.train.TrainedFactors.factor_blocks` and the model's
    ``blocks/``) holds a training block's ids, factors and the CSR of its training pairs,
    whose columns index ``needed_ids``. The query blocks are therefore ready to score as
    they are, exclusion list included: unlike :func:`recommend`, nothing is shuffled by
    query and no seen pair moves. They are scored in the partitions they come in, so their
    partitioning is the parallelism: :func:`walsspark.block_tables.factor_blocks` gives one block
    per partition, and the model's ``*_blocks/`` hold one file per block, which Spark's
    file splitting spreads over the cores (measured: a repartition by block cost 0.1 s of
    the 0.4 s job on ML-1M).

    Parameters
    ----------
    query_blocks, candidate_blocks : DataFrame
        Factor blocks (``block``, ``ids``, ``factors``, ``indptr``, ``cols``,
        ``needed_ids``) of the side asking and the side ranked.
    k, rank : int
    num_candidates : int
        Number of candidate ids.
    exclude_seen : bool
        Exclude the pairs trained on (the blocks' CSR); ``False`` keeps them.
    max_candidate_bytes : int
        Candidate factors up to this size are merged into one block shipped to every task;
        beyond it every candidate training block is scored against every query block and
        the partial top-Ks are merged.

    Returns
    -------
    DataFrame
        As :func:`recommend`.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    query_type = query_blocks.schema["ids"].dataType.elementType.simpleString()
    cand_type = candidate_blocks.schema["ids"].dataType.elementType.simpleString()
    if exclude_seen:
        seen = [
            F.col("indptr").alias("seen_offsets"),
            F.col("cols").alias("seen_cols"),
            F.col("needed_ids").alias("seen_ids"),
        ]
    else:
        seen = [
            F.lit(None).cast("binary").alias("seen_offsets"),
            F.lit(None).cast("binary").alias("seen_cols"),
            F.lit(None).cast(f"array<{cand_type}>").alias("seen_ids"),
        ]
    queries = query_blocks.select(
        F.col("block").alias("qblock"),
        F.col("ids").alias("query_ids"),
        F.col("factors").alias("query_factors"),
        *seen,
    )
    candidates = candidate_blocks.select(
        F.col("block").alias("cblock"),
        F.col("ids").alias("cand_ids"),
        F.col("factors").alias("cand_factors"),
    )
    several = num_candidates * rank * 4 > max_candidate_bytes
    if not several:
        # repartition(1), not coalesce(1), for the reason given in recommend().
        candidates = candidates.repartition(1).mapInArrow(
            _merge_blocks_fn(rank, _arrow_type(cand_type)),
            f"cblock int, cand_ids array<{cand_type}>, cand_factors binary",
        )
    return _score_blocks(queries, candidates, several, k, rank, query_type, cand_type)
