"""Popularity-scaled unobserved weights: the frequencies they read and their normalization.

With ``unobserved_col_weights="power:E"`` the unobserved weight of (i, j) is w0 s_i t_j with
t_j = m_j ** E / mean_j'(m_j' ** E), m_j the item's number of training ratings (eALS, He et
al., SIGIR 2016); rows likewise (:mod:`walsspark.solver` has the objective). A block knows
its own rows' frequencies (its CSR's row lengths) but not those of the columns its entries
point to, so the layout carries them per entry (:func:`with_counts`), and the normalizing
means come from each side's histogram of frequencies (:func:`unobserved_norms`): a few
thousand numbers collected once per layout, from which any exponent's mean follows
without another Spark job (``walsspark tune`` tries several on one layout).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from walsspark.blocks import SideLayout
from walsspark.factors import binary_views


def with_counts(
    ratings: DataFrame, holdout: DataFrame | None = None
) -> tuple[DataFrame, DataFrame | None]:
    """``ratings`` (and ``holdout``) with ``user_count`` and ``item_count`` columns.

    The counts are the training frequencies: the number of rows of ``ratings`` per user and
    per item. Held-out pairs get those of the training ratings (0 for an id that has none).
    """
    user_counts = ratings.groupBy("user").agg(F.count(F.lit(1)).alias("user_count"))
    item_counts = ratings.groupBy("item").agg(F.count(F.lit(1)).alias("item_count"))
    counted = ratings.join(user_counts, "user").join(item_counts, "item")
    if holdout is not None:
        holdout = (
            holdout.join(user_counts, "user", "left")
            .join(item_counts, "item", "left")
            .fillna(0, subset=["user_count", "item_count"])
        )
    return counted, holdout


def _histogram_fn(batches):
    """mapInArrow function: (frequency, ids) pairs of one partition's rating blocks."""
    counts = []
    for batch in batches:
        for indptr in binary_views(pa.chunked_array([batch.column("indptr")]), "<i8"):
            counts.append(np.diff(indptr))
    values, ids = np.unique(np.concatenate(counts), return_counts=True) if counts else ([], [])
    yield pa.RecordBatch.from_pydict(
        {"frequency": pa.array(values, pa.int64()), "ids": pa.array(ids, pa.int64())}
    )


def count_histogram(rating_blocks: DataFrame) -> dict[int, int]:
    """{training frequency: number of ids with it} over one side's rating blocks."""
    rows = (
        rating_blocks.select("indptr")
        .mapInArrow(_histogram_fn, "frequency long, ids long")
        .groupBy("frequency")
        .agg(F.sum("ids").alias("ids"))
        .collect()
    )
    return {int(row["frequency"]): int(row["ids"]) for row in rows}


def unobserved_norms(
    users: SideLayout, items: SideLayout, exponents: tuple[float, float]
) -> tuple[float, float]:
    """The users' and items' mean(n ** e) for the exponents (e_row, e_col); 1 for e = 0."""
    return (
        mean_power(users.count_histogram(), exponents[0]) if exponents[0] else 1.0,
        mean_power(items.count_histogram(), exponents[1]) if exponents[1] else 1.0,
    )


def mean_power(histogram: dict[int, int], exponent: float) -> float:
    """mean(n ** exponent) over the ids with at least one rating (1 when there are none)."""
    pairs = [(n, ids) for n, ids in histogram.items() if n > 0]
    if not pairs or exponent == 0:
        return 1.0
    frequency = np.array([n for n, _ in pairs], dtype=np.float64)
    ids = np.array([i for _, i in pairs], dtype=np.float64)
    return float(np.sum(ids * frequency**exponent) / np.sum(ids))
