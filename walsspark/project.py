"""Fold-in (projection): factors for rows the model has not seen, without retraining.

A new user's factors solve the training row update against the trained item factors:

    (w0 G + lambda_i I + sum_{j in S_i} (W_ij - w0) v_j v_j^T) u_i = sum_{j in S_i} W_ij a_ij v_j

with G = V^T V over all trained items, the model's w0, weights and lambda_i = lambda n_i^nu,
i.e. exactly :func:`walsspark.solver.solve_block`. ``--for items`` projects new items
against the trained user factors the same way (row and column weights swapped).

How it runs: the trained factors of the fixed side are packed into one block (sorted ids)
and broadcast-joined to every block of new rows, as ``recommend`` ships its candidates;
each task maps the rated ids to factor rows, builds the CSR, computes G from the shipped
factors and solves its rows with one batched call.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from walsspark.factors import decode_factors
from walsspark.recommend import _pack_candidates_fn
from walsspark.solver import CsrBlock, ObjectiveWeights, gramian, solve_block


def _project_fn(rank: int, weights: ObjectiveWeights):
    def project(batches):
        for batch in batches:
            for row in range(batch.num_rows):
                yield _project_block(batch.slice(row, 1), rank, weights)

    return project


def _project_block(pair: pa.RecordBatch, rank: int, weights: ObjectiveWeights):
    fixed_ids = pair.column("cand_ids")[0].values
    fixed = decode_factors(pair.column("cand_factors")[0].as_py(), rank)
    ratings = pair.column("ratings")[0].values  # struct<row, other, rating[, confidence]>
    row_ids = ratings.field("row")
    targets = ratings.field("rating").to_numpy(zero_copy_only=False)
    names = [ratings.type.field(i).name for i in range(ratings.type.num_fields)]
    confidences = None
    if "confidence" in names:
        confidences = ratings.field("confidence").to_numpy(zero_copy_only=False)
    cols = pc.fill_null(pc.index_in(ratings.field("other"), value_set=fixed_ids), -1).to_numpy()
    known = cols >= 0  # ratings of ids the model does not know carry no information here
    encoded = pc.dictionary_encode(row_ids)
    ids_in_order, rows = encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False)
    n = len(ids_in_order)
    rows, cols, targets = rows[known], cols[known].astype(np.int32), targets[known]
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    if confidences is not None:
        confidences = confidences[known][order].astype(np.float32)
    block = CsrBlock(indptr, cols[order], targets[order].astype(np.float32), confidences)
    solution = solve_block(block, fixed, gramian(fixed), weights)
    features = pa.FixedSizeListArray.from_arrays(
        pa.array(solution.factors.ravel(), pa.float32()), rank
    ).cast(pa.list_(pa.float32()))
    return pa.RecordBatch.from_pydict(
        {"id": ids_in_order, "features": features, "rated": pa.array(block.counts, pa.int64())}
    )


def project(
    new_ratings: DataFrame,
    fixed_factors: DataFrame,
    rank: int,
    weights: ObjectiveWeights,
    num_blocks: int = 2,
) -> DataFrame:
    """Project new rows against trained factors.

    Parameters
    ----------
    new_ratings : DataFrame
        ``row`` (the new ids), ``other`` (ids of the trained side), ``rating`` (the target)
        and, for models with per-entry weights, ``confidence``
        (:func:`walsspark.weighting.entry_weights`).
    fixed_factors : DataFrame
        ``id``, ``features`` of the trained side.
    rank : int
    weights : ObjectiveWeights
        The objective seen from the rows being projected.
    num_blocks : int
        Blocks of new rows (tasks).

    Returns
    -------
    DataFrame
        ``id``, ``features`` array<float>, ``rated`` (ratings of known ids used; a row
        whose rated ids are all unknown to the model gets zero factors).
    """
    row_type = new_ratings.schema["row"].dataType.simpleString()
    other_type = fixed_factors.schema["id"].dataType.simpleString()
    arrow_other = pa.string() if other_type == "string" else pa.int64()
    fixed_block = (
        fixed_factors.withColumn("cblock", F.lit(0))
        .groupBy("cblock")
        .applyInArrow(
            _pack_candidates_fn(rank, arrow_other),
            f"cblock int, cand_ids array<{other_type}>, cand_factors binary",
        )
    )
    row_blocks = (
        new_ratings.withColumn("rblock", F.pmod(F.xxhash64("row"), F.lit(num_blocks)))
        .groupBy("rblock")
        .agg(
            F.collect_list(
                F.struct(
                    "row",
                    F.col("other").cast(other_type).alias("other"),
                    F.col("rating").cast("float").alias("rating"),
                    *(
                        [F.col("confidence").cast("float").alias("confidence")]
                        if "confidence" in new_ratings.columns
                        else []
                    ),
                )
            ).alias("ratings")
        )
    )
    return row_blocks.crossJoin(F.broadcast(fixed_block)).mapInArrow(
        _project_fn(rank, weights), f"id {row_type}, features array<float>, rated long"
    )
