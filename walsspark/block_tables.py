"""What saved or fitted factor blocks hold, as plain tables.

A factor block (:data:`FACTOR_BLOCK_COLUMNS`, made by :func:`factor_blocks` from a side's
last half-sweep) keeps a training block's ids, factors and the CSR of its training pairs
over ``needed_ids``. These read them back as rows: per-id factors, and the (query,
candidate) pairs trained on, which recommendations exclude. Used by the pyspark.ml model
and by ``walsspark recommend``, which thus never re-reads the training input of a model
that has its blocks.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from walsspark.blocks import SideLayout, pkey_column
from walsspark.factors import binary_views
from walsspark.half_sweep import BLOCK_ROW


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


def _solved_rows_fn(rank: int, id_type: pa.DataType):
    """Cogroup function: explode one solved block into per-id rows."""

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
        .applyInArrow(
            _solved_rows_fn(rank, arrow_type), f"id {side.id_type}, features array<float>"
        )
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
