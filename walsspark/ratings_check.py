"""Checking rating data: one aggregation pass that names the first problem found."""

from __future__ import annotations

import math
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 - the usual PySpark alias

from walsspark.errors import InputError, first_line
from walsspark.ratings_read import ITEM, RATING, RAW_RATING, RAW_SOURCE_ATTR, USER


def validate_ratings(df: DataFrame) -> int:
    """Check ratings in one aggregation pass and return the row count.

    The checks, reported in this order (the first failing check raises): no rows; null
    user or item ids; null or non-numeric ratings; NaN or infinite ratings. Each message
    gives the number of bad rows and one example row.

    Parameters
    ----------
    df : DataFrame
        Ratings in the internal layout, as returned by :func:`read_ratings`.

    Returns
    -------
    int
        Number of ratings.

    Raises
    ------
    InputError
        Naming the first problem found, e.g.
        ``3 rows have a null user id (e.g. item=17, rating=4.0)``.
    """
    require_columns(df, (USER, ITEM, RATING))
    source = vars(df).get(RAW_SOURCE_ATTR)
    raw = F.col(RAW_RATING) if source is not None else None
    data = source if source is not None else df

    user, item, rating = F.col(USER), F.col(ITEM), F.col(RATING)
    null_rating = rating.isNull() if raw is None else rating.isNull() & raw.isNull()
    conditions: dict[str, tuple[Column, Column]] = {
        "null_user": (user.isNull(), F.struct(item, rating)),
        "null_item": (item.isNull(), F.struct(user, rating)),
        "null_rating": (null_rating, F.struct(user, item)),
        "nonfinite": (
            F.isnan(rating) | (F.abs(rating) == F.lit(math.inf)),
            F.struct(user, item, rating),
        ),
    }
    if raw is not None:
        conditions["non_numeric"] = (
            rating.isNull() & raw.isNotNull(),
            F.struct(user, item, raw.alias(RATING)),
        )
    aggregates = [F.count(F.lit(1)).alias("n")]
    for key, (condition, example) in conditions.items():
        aggregates.append(F.sum(F.when(condition, 1).otherwise(0)).alias(key))
        aggregates.append(F.min(F.when(condition, example)).alias(key + "_example"))
    try:
        row = data.agg(*aggregates).collect()[0].asDict(recursive=True)
    except Exception as error:  # noqa: BLE001 - classic, Py4J and Connect errors alike
        # The first pass over every input file: files Spark cannot read as one table (a
        # Parquet column whose type differs between files, a corrupt file) fail here.
        if "FAILED_READ_FILE" in str(error) or "CANNOT_READ_FILE" in str(error):
            raise InputError(f"cannot read the ratings: {first_line(error)}") from None
        raise

    count = int(row["n"])
    if count == 0:
        raise InputError("input has no ratings")

    def problem(key: str, what: str) -> str | None:
        bad = int(row.get(key) or 0)
        if bad == 0:
            return None
        verb = "row has" if bad == 1 else "rows have"
        return f"{bad} {verb} {what} (e.g. {_describe(row[key + '_example'])})"

    checks = (
        [("null_user", "a null user id"), ("null_item", "a null item id")],
        [("non_numeric", "a non-numeric rating"), ("null_rating", "a null rating")],
        [("nonfinite", "a NaN or infinite rating")],
    )
    for group in checks:
        found = [text for key, what in group if (text := problem(key, what))]
        if found:
            raise InputError("; ".join(found))
    return count


def _describe(example: dict[str, Any] | None) -> str:
    """``user=1, item=2, rating=4.0`` from an example row (strings quoted)."""
    if not example:
        return "?"
    return ", ".join(f"{key}={describe_value(value)}" for key, value in example.items())


def describe_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return "null" if value is None else str(value)


def require_columns(df: DataFrame, names: tuple[str, ...]) -> None:
    present = df.columns
    missing = [name for name in names if name not in present]
    if missing:
        raise InputError(
            f"ratings are missing column(s) {', '.join(missing)}; "
            f"columns present: {', '.join(present) or '(none)'}"
        )
