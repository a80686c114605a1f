"""What saved or fitted factor blocks hold, as plain tables.

A factor block (:data:`walsspark.train.FACTOR_BLOCK_COLUMNS`) keeps a training block's ids,
factors and the CSR of its training pairs over ``needed_ids``. These read them back as
rows: per-id factors, and the (query, candidate) pairs trained on, which recommendations
exclude. Used by the pyspark.ml model and by ``walsspark recommend``, which thus never
re-reads the training input of a model that has its blocks.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from walsspark.factors import binary_views


def _rows_fn(rank: int, id_type: pa.DataType):
    """mapInArrow function: per-id factor rows of factor blocks."""

    def rows(batches):
        for batch in batches:
            factors = binary_views(batch.column("factors"), "<f4")
            for index in range(batch.num_rows):
                ids = batch.column("ids")[index].values.cast(id_type)
                features = pa.FixedSizeListArray.from_arrays(
                    pa.array(factors[index], pa.float32()), rank
                ).cast(pa.list_(pa.float32()))
                yield pa.RecordBatch.from_arrays([ids, features], names=["id", "features"])

    return rows


def factor_rows_of_blocks(blocks: DataFrame, rank: int) -> DataFrame:
    """``id``, ``features`` (array<float>) per id of factor blocks."""
    id_type = blocks.schema["ids"].dataType.elementType.simpleString()
    return blocks.select("ids", "factors").mapInArrow(
        _rows_fn(rank, _arrow(id_type)), f"id {id_type}, features array<float>"
    )


def _arrow(spark_type: str) -> pa.DataType:
    return pa.string() if spark_type == "string" else pa.int64()


def _pairs_fn(query_type: pa.DataType, candidate_type: pa.DataType):
    """mapInArrow function: the (query, candidate) pairs of factor blocks' CSRs."""

    def pairs(batches):
        for batch in batches:
            indptrs = binary_views(batch.column("indptr"), "<i8")
            cols = binary_views(batch.column("cols"), "<i4")
            for index in range(batch.num_rows):
                ids = batch.column("ids")[index].values
                needed = batch.column("needed_ids")[index].values
                counts = np.diff(indptrs[index])
                owners = np.repeat(np.arange(len(ids)), counts)
                yield pa.RecordBatch.from_arrays(
                    [
                        pc.take(ids, pa.array(owners)).cast(query_type),
                        pc.take(needed, pa.array(cols[index])).cast(candidate_type),
                    ],
                    names=["query", "candidate"],
                )

    return pairs


def training_pairs(blocks: DataFrame) -> DataFrame:
    """``query``, ``candidate``: every pair trained on, from one side's factor blocks."""
    own = blocks.schema["ids"].dataType.elementType.simpleString()
    other = blocks.schema["needed_ids"].dataType.elementType.simpleString()
    return blocks.select("ids", "indptr", "cols", "needed_ids").mapInArrow(
        _pairs_fn(_arrow(own), _arrow(other)), f"query {own}, candidate {other}"
    )
