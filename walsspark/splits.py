"""Train/test splits of ratings: seeded, reproducible, computed on the executors.

- ``random``: each rating is held out when a uniform hashed from (seed, user, item) is
  below ``fraction`` (:func:`split_holdout`);
- ``user-fraction``: per user, the ``round(fraction * n_u)`` ratings with the smallest
  hashed uniforms are held out, keeping at least one in training;
- ``leave-k-out``: per user, the ``k`` ratings with the smallest hashed uniforms are held
  out; users with ``k`` or fewer ratings stay whole in training;
- ``time``: ratings after the ``1 - fraction`` quantile of the timestamps are held out (one
  global cut: the test set is the most recent ``fraction`` of the ratings; ratings at the
  cut itself stay in training, so ties make the test set a little smaller).

Every assignment depends only on the seed, the pair and (for the per-user methods) the
user's other pairs, never on partitioning or row order.
"""

from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType

from walsspark.errors import InputError
from walsspark.params import SPLIT_METHODS
from walsspark.ratings_check import require_columns
from walsspark.ratings_read import ITEM, USER

# Relative error of the sketch that brackets the time split's cut: the exact cut is then
# found among the timestamps inside the bracket, about 4 * error * n of them (plus ties).
# approxQuantile with error 0 would keep every timestamp of the data in one sketch.
TIME_QUANTILE_BRACKET_ERROR = 1e-4


def split_ratings(
    ratings: DataFrame, method: str, fraction: float, k: int, seed: int
) -> tuple[DataFrame, DataFrame]:
    """Split ratings into ``(train, test)`` by ``method``.

    Parameters
    ----------
    ratings : DataFrame
        ``user``, ``item``, ``rating`` (and ``timestamp`` for the time split), one row per
        pair.
    method : str
        One of :data:`SPLIT_METHODS`.
    fraction : float
        Share held out (random, user-fraction, time), in [0, 1).
    k : int
        Ratings held out per user (leave-k-out), >= 1.
    seed : int

    Returns
    -------
    tuple of DataFrame
        Both with the columns of ``ratings``.

    Raises
    ------
    InputError
        Unknown method, bad fraction or k, or a time split without a timestamp column.
    """
    if method not in SPLIT_METHODS:
        raise InputError(f"split must be one of {', '.join(SPLIT_METHODS)}, got {method!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise InputError(f"holdout fraction must be in [0, 1), got {fraction!r}")
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"holdout fraction must be in [0, 1), got {fraction!r}")
    if method == "random":
        return split_holdout(ratings, fraction, seed)
    if method == "time":
        return _split_by_time(ratings, fraction)
    if method == "leave-k-out" and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise InputError(f"holdout k must be an integer >= 1, got {k!r}")
    # Rank each user's ratings by the hashed uniform (the item breaks exact ties).
    by_user = Window.partitionBy("user").orderBy(holdout_uniform(seed), "item")
    ranked = ratings.withColumn("_rank", F.row_number().over(by_user)).withColumn(
        "_count", F.count(F.lit(1)).over(Window.partitionBy("user"))
    )
    if method == "leave-k-out":
        held = (F.col("_rank") <= F.lit(k)) & (F.col("_count") > F.lit(k))
    else:
        quota = F.least(F.round(F.col("_count") * F.lit(float(fraction))), F.col("_count") - 1)
        held = F.col("_rank") <= quota
    ranked = ranked.withColumn("_held", held)
    columns = ratings.columns
    return (
        ranked.filter(~F.col("_held")).select(*columns),
        ranked.filter(F.col("_held")).select(*columns),
    )


def _split_by_time(ratings: DataFrame, fraction: float) -> tuple[DataFrame, DataFrame]:
    if "timestamp" not in ratings.columns:
        raise InputError("the time split needs a timestamp column (pass --timestamp-col NAME)")
    if fraction == 0:
        return ratings, ratings.limit(0)
    cut = exact_quantile(ratings, "timestamp", 1.0 - fraction)
    if cut is None:  # no ratings
        return ratings, ratings.limit(0)
    after = F.col("timestamp") > F.lit(cut)
    return ratings.filter(~after | F.col("timestamp").isNull()), ratings.filter(after)


def exact_quantile(
    frame: DataFrame, column: str, quantile: float, error: float = TIME_QUANTILE_BRACKET_ERROR
) -> float | None:
    """The exact ``quantile`` of a numeric column in bounded driver memory.

    The value of rank ``ceil(quantile * n)`` (1-based, at least 1) among the ``n`` non-null
    values in ascending order: what ``approxQuantile(column, [quantile], 0.0)`` returns, but
    without a sketch that keeps all ``n`` values. A sketch of relative error ``error``
    brackets the rank between two values; the rows below the bracket are counted and the
    distinct values inside it (about ``4 * error * n`` rows) are collected with their
    counts, and the rank is found among them.

    Parameters
    ----------
    frame : DataFrame
    column : str
    quantile : float
        In [0, 1].
    error : float
        Relative error of the bracketing sketch.

    Returns
    -------
    float or None
        ``None`` when the column has no values.
    """
    value = F.col(column)
    total = frame.select(F.count(value)).collect()[0][0]
    if not total:
        return None
    rank = min(total, max(1, math.ceil(quantile * total)))
    low, high = frame.approxQuantile(
        column, [max(0.0, quantile - 2 * error), min(1.0, quantile + 2 * error)], error
    )
    # The sketch guarantees rank(low) <= rank <= rank(high); guard anyway, at the price of
    # a wider second pass, rather than trust it for an exact answer.
    below = frame.filter(value < F.lit(low)).count()
    if below >= rank:
        low, below = None, 0
    inside = frame.filter(value.isNotNull())
    if low is not None:
        inside = inside.filter(value >= F.lit(low))
    counted = inside.filter(value <= F.lit(high)).groupBy(value).count().orderBy(value)
    seen = below
    for row in counted.toLocalIterator():
        seen += row["count"]
        if seen >= rank:
            return float(row[column])
    # rank beyond high: fall back to the rows above the bracket, in order.
    for row in (
        inside.filter(value > F.lit(high)).groupBy(value).count().orderBy(value).toLocalIterator()
    ):
        seen += row["count"]
        if seen >= rank:
            return float(row[column])
    raise AssertionError("unreachable: the rank is at most the number of values")


_HASH_BITS = 53  # a double holds 53-bit integers exactly


def holdout_uniform(seed: int) -> Column:
    """A uniform in [0, 1) from a hash of ``(seed, user, item)``.

    It depends only on the seed and the pair, not on partitioning or row order.

    Parameters
    ----------
    seed : int
        Seed of the hash.

    Returns
    -------
    Column
        A double in [0, 1) computed from the ``user`` and ``item`` columns.
    """
    hashed = F.xxhash64(F.lit(int(seed)).cast(LongType()), F.col(USER), F.col(ITEM))
    return F.shiftrightunsigned(hashed, 64 - _HASH_BITS).cast(DoubleType()) / float(2**_HASH_BITS)


def split_holdout(df: DataFrame, fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """Split ratings at random into training and hold-out sets, reproducibly.

    Each rating goes to the hold-out set when a uniform computed from a hash of
    ``(seed, user, item)`` is below ``fraction``, so the split is the same whatever the
    partitioning or row order, and a pair always lands on the same side.

    Parameters
    ----------
    df : DataFrame
        Ratings in the internal layout (duplicates resolved).
    fraction : float
        Expected share of ratings held out, ``0 <= fraction < 1``; 0 gives an empty
        hold-out set.
    seed : int
        Seed of the hash.

    Returns
    -------
    tuple of DataFrame
        ``(train, holdout)``, both with the columns of ``df``.

    Raises
    ------
    InputError
        If ``fraction`` is outside [0, 1).
    """
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(fraction, bool) or not 0.0 <= value < 1.0:
        raise InputError(f"holdout fraction must be in [0, 1), got {fraction}")
    require_columns(df, (USER, ITEM))
    uniform = holdout_uniform(seed)
    return df.filter(uniform >= F.lit(value)), df.filter(uniform < F.lit(value))
