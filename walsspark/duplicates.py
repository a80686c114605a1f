"""Merging ratings that share a (user, item) pair."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 - the usual PySpark alias
from pyspark.sql.types import DoubleType

from walsspark.errors import InputError
from walsspark.params import DUPLICATE_POLICIES
from walsspark.ratings_check import describe_value, require_columns
from walsspark.ratings_read import ITEM, RATING, TIMESTAMP, USER, column


def resolve_duplicates(df: DataFrame, policy: str) -> DataFrame:
    """Merge ratings that share a (user, item) pair.

    Parameters
    ----------
    df : DataFrame
        Ratings in the internal layout.
    policy : str
        ``sum``: add the ratings (timestamp: the latest); ``mean``: average them
        (timestamp: the latest); ``last``: keep the rating with the latest timestamp, ties
        going to the larger rating (needs a ``timestamp`` column; a null timestamp counts
        as the oldest); ``error``: raise if any pair occurs more than once (one small
        aggregation job), else return ``df`` unchanged.

    Returns
    -------
    DataFrame
        One row per (user, item) pair, with the same columns as ``df``. Other columns
        than the internal ones take their maximum (``sum``, ``mean``) or the kept row's
        value (``last``).

    Raises
    ------
    InputError
        Unknown policy, ``last`` without a timestamp column, or duplicates under
        ``error``.
    """
    name = (policy or "").strip().lower()
    if name not in DUPLICATE_POLICIES:
        raise InputError(
            f"unknown duplicate policy {policy!r}; expected one of: {', '.join(DUPLICATE_POLICIES)}"
        )
    require_columns(df, (USER, ITEM, RATING))
    columns = df.columns
    keys = [USER, ITEM]
    others = [c for c in columns if c not in (USER, ITEM, RATING, TIMESTAMP)]
    has_timestamp = TIMESTAMP in columns

    if name == "error":
        _fail_on_duplicates(df)
        return df
    if name == "last":
        if not has_timestamp:
            raise InputError("duplicate policy 'last' needs a timestamp column")
        order = [TIMESTAMP, RATING, *others]
        latest = F.max(F.struct(*[column(c) for c in order])).alias("_latest")
        merged = df.groupBy(*keys).agg(latest)
        nested = F.col("_latest")
        return merged.select(
            *[nested.getField(c).alias(c) if c in order else column(c) for c in columns]
        )

    combine = F.sum if name == "sum" else F.avg
    aggregates = [combine(F.col(RATING)).cast(DoubleType()).alias(RATING)]
    if has_timestamp:
        aggregates.append(F.max(F.col(TIMESTAMP)).alias(TIMESTAMP))
    aggregates += [F.max(column(c)).alias(c) for c in others]
    return df.groupBy(*keys).agg(*aggregates).select(*[column(c) for c in columns])


def _fail_on_duplicates(df: DataFrame) -> None:
    """Raise if any (user, item) pair occurs more than once (one small collect)."""
    counts = df.groupBy(USER, ITEM).agg(F.count(F.lit(1)).alias("n")).filter(F.col("n") > 1)
    example = F.min(F.struct(USER, ITEM, "n")).alias("example")
    row = counts.agg(F.count(F.lit(1)).alias("pairs"), example).collect()[0]
    pairs = int(row["pairs"])
    if pairs:
        ex = row["example"]
        noun = "pair occurs" if pairs == 1 else "pairs occur"
        raise InputError(
            f"{pairs} (user, item) {noun} more than once "
            f"(e.g. user={describe_value(ex[USER])}, item={describe_value(ex[ITEM])}: "
            f"{ex['n']} ratings); "
            "choose a duplicate policy: sum, mean or last"
        )
