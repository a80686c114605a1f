"""Reading, checking, de-duplicating and splitting rating data.

Every reader returns the same internal layout: columns ``user``, ``item``, ``rating``
(double) and, when the input has one, ``timestamp`` (long, seconds). User and item ids
keep their type family: integral ids become ``long``, string ids stay ``string``.

Everything here uses the DataFrame API only (no RDDs, no ``sparkContext``), so it runs on
classic Spark and on Spark Connect alike, and nothing collects more than a one-row
aggregate to the driver.
"""

from __future__ import annotations

import glob
import math
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - the usual PySpark alias
from pyspark.sql.types import (
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegralType,
    LongType,
    NumericType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from walsspark.errors import InputError

USER, ITEM, RATING, TIMESTAMP = "user", "item", "rating", "timestamp"
RATING_COLUMNS: tuple[str, str, str, str] = (USER, ITEM, RATING, TIMESTAMP)
"""Internal column names: user id, item id, rating and (optional) timestamp."""

FORMATS: tuple[str, ...] = ("auto", "parquet", "csv", "tsv", "movielens")
"""Values accepted by :func:`read_ratings` for ``fmt``."""

DUPLICATE_POLICIES: tuple[str, ...] = ("sum", "mean", "last", "error")
"""Values accepted by :func:`resolve_duplicates` for ``policy``."""

# MovieLens file names, in the order a directory is searched for them.
MOVIELENS_FILES: tuple[str, ...] = ("u.data", "ratings.dat", "ratings.csv")
MOVIELENS_CSV_HEADER: tuple[str, ...] = ("userId", "movieId", "rating", "timestamp")

# Every MovieLens file is read as four string fields and converted afterwards, so a bad
# value becomes a null (detectable by validate_ratings) instead of failing the job.
_STRING_FIELDS = StructType(
    [StructField(name, StringType(), True) for name in ("c0", "c1", "c2", "c3")]
)

# read_ratings stores, in the returned DataFrame object's ``__dict__``, the same rows with
# the rating's raw text kept as an extra column, so validate_ratings can tell a null rating
# from a non-numeric one and show the offending text. Any transformation of the DataFrame
# returns a new object without it; validate_ratings then checks the double column only.
_RAW_SOURCE_ATTR = "_walsspark_raw_rating_source"
_RAW_RATING = "_walsspark_raw_rating"

_GLOB_CHARS = frozenset("*?[{")
_MAX_CAUSE_CHARS = 300
_JAVA_EXCEPTION_PREFIX = re.compile(r"^(?:[a-z_][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error): ")


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def read_ratings(
    spark: SparkSession,
    path: str,
    fmt: str = "auto",
    user_col: str = "user_id",
    item_col: str = "item_id",
    rating_col: str = "rating",
    timestamp_col: str | None = None,
    extra_cols: tuple[str, ...] = (),
) -> DataFrame:
    """Read ratings into the internal layout ``user, item, rating[, timestamp]``.

    Parameters
    ----------
    spark : SparkSession
        A classic or Spark Connect session.
    path : str
        File, directory or glob; local or any file system URI Spark can read.
    fmt : str
        ``auto``, ``parquet``, ``csv`` (with a header), ``tsv`` (no header; positional
        columns user, item, rating and an optional timestamp) or ``movielens``
        (``u.data``, ``ratings.dat`` or ``ratings.csv``, or a directory holding one).
        ``auto`` picks the format from the path name or the directory's content.
    user_col, item_col, rating_col : str
        Source column names (parquet and csv only).
    timestamp_col : str, optional
        Source timestamp column (parquet and csv only); without it the result has no
        ``timestamp`` column unless the format defines one (tsv with four columns,
        MovieLens).
    extra_cols : tuple of str
        Further numeric source columns to keep as doubles, named :func:`weight_alias`
        (``_w_<name>``, so that a weight column may also be, say, the rating column);
        parquet and csv only.

    Returns
    -------
    DataFrame
        Columns ``user`` and ``item`` (long, or string for string ids), ``rating``
        (double; null where the source value is missing or not a number) and, when
        available, ``timestamp`` (long). Nothing is collected; bad rows are left for
        :func:`validate_ratings` to report.

    Raises
    ------
    InputError
        Unknown format, missing or unreadable input, format that cannot be determined,
        missing columns, or an id/rating/timestamp column of an unsupported type.
    """
    fmt_name = (fmt or "auto").strip().lower()
    if fmt_name not in FORMATS:
        raise InputError(f"unknown input format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    _check_exists(path)

    source = path
    if fmt_name == "auto":
        fmt_name, source = _detect_format(spark, path)
    elif fmt_name == "movielens":
        source = _movielens_file(spark, path)

    if fmt_name in ("parquet", "csv"):
        names = (user_col, item_col, rating_col, timestamp_col)
        return _read_named(spark, path, fmt_name, *names, extra_cols=extra_cols)
    if extra_cols:
        raise InputError(
            f"weight columns ({', '.join(extra_cols)}) need a parquet or csv input, not {fmt_name}"
        )
    if fmt_name == "tsv":
        return _read_tsv(spark, path)
    return _read_movielens(spark, source)


def weight_alias(name: str) -> str:
    """The internal name of the extra (weight) source column ``name``."""
    return f"_w_{name}"


def _read_named(
    spark: SparkSession,
    path: str,
    fmt: str,
    user_col: str,
    item_col: str,
    rating_col: str,
    timestamp_col: str | None,
    extra_cols: tuple[str, ...] = (),
) -> DataFrame:
    """Read parquet or headed CSV and map the named columns to the internal layout."""

    def load() -> DataFrame:
        if fmt == "parquet":
            df = spark.read.parquet(path)
        else:
            df = spark.read.csv(path, header=True, inferSchema=True)
        df.schema  # noqa: B018 - forces analysis (lazy on Spark Connect) inside the guard
        return df

    df = _guarded(path, fmt, load)
    if not df.columns:  # an empty csv file: no header, no rows
        raise InputError(f"input has no ratings: {path} is empty")
    wanted = [user_col, item_col, rating_col] + ([timestamp_col] if timestamp_col else [])
    resolved = _resolve_columns(df, wanted + list(extra_cols), path)
    sources = dict(zip((USER, ITEM, RATING, TIMESTAMP), resolved[: len(wanted)], strict=False))
    extras = []
    for name, source in zip(extra_cols, resolved[len(wanted) :], strict=True):
        dtype = df.schema[source].dataType
        if not isinstance(dtype, NumericType):
            raise InputError(
                f"weight column {name!r} has type {dtype.simpleString()}; expected numbers"
            )
        extras.append(_col(source).cast(DoubleType()).alias(weight_alias(name)))
    return _to_internal(df, sources, extras)


def _read_tsv(spark: SparkSession, path: str) -> DataFrame:
    """Read headerless tab-separated user, item, rating[, timestamp] (types inferred)."""

    def load() -> DataFrame:
        df = spark.read.csv(path, sep="\t", header=False, inferSchema=True)
        df.schema  # noqa: B018 - forces analysis (lazy on Spark Connect) inside the guard
        return df

    df = _guarded(path, "tsv", load)
    columns = df.columns
    if not columns:  # an empty file: let validate_ratings report "no ratings"
        return _to_internal(_empty_strings(spark), {USER: "c0", ITEM: "c1", RATING: "c2"})
    if len(columns) < 3:
        raise InputError(
            f"tsv input {path} has {len(columns)} column(s); "
            "expected user, item, rating and optionally timestamp"
        )
    sources = dict(zip((USER, ITEM, RATING, TIMESTAMP), columns[:4], strict=False))
    return _to_internal(df, sources)


def _read_movielens(spark: SparkSession, path: str) -> DataFrame:
    """Read one MovieLens ratings file (``u.data``, ``ratings.dat`` or ``ratings.csv``)."""
    kind = _movielens_kind(path)

    def load() -> DataFrame:
        if kind == "dat":
            # "::" is a two-character separator, which the CSV reader of older Spark
            # versions rejects: read lines as text and split them instead.
            lines = spark.read.text(path)
            lines = lines.filter(F.trim(F.col("value")) != "")
            fields = F.split(F.col("value"), "::")
            df = lines.select(*[F.trim(F.get(fields, i)).alias(f"c{i}") for i in range(4)])
        elif kind == "data":
            df = spark.read.csv(path, sep="\t", header=False, schema=_STRING_FIELDS)
        else:
            df = spark.read.csv(path, header=True, schema=_STRING_FIELDS)
        df.schema  # noqa: B018 - forces analysis (lazy on Spark Connect) inside the guard
        return df

    df = _guarded(path, "movielens", load)
    df = df.select(
        F.col("c0").try_cast(LongType()).alias("c0"),
        F.col("c1").try_cast(LongType()).alias("c1"),
        "c2",
        "c3",
    )
    return _to_internal(df, {USER: "c0", ITEM: "c1", RATING: "c2", TIMESTAMP: "c3"})


def _to_internal(df: DataFrame, sources: dict[str, str], extras: list | None = None) -> DataFrame:
    """Project the source columns named in ``sources`` onto the internal layout.

    Keeps the raw rating text (for string ratings) on a side DataFrame stored in the
    result's ``__dict__`` so :func:`validate_ratings` can report non-numeric values.
    """
    fields = {field.name: field.dataType for field in df.schema.fields}
    columns = [
        _id_column(sources[USER], fields[sources[USER]], "user"),
        _id_column(sources[ITEM], fields[sources[ITEM]], "item"),
        _rating_column(sources[RATING], fields[sources[RATING]]),
    ]
    if TIMESTAMP in sources:
        columns.append(_timestamp_column(sources[TIMESTAMP], fields[sources[TIMESTAMP]]))
    columns += extras or []
    result = df.select(*columns)
    if isinstance(fields[sources[RATING]], StringType):
        raw = _col(sources[RATING]).alias(_RAW_RATING)
        vars(result)[_RAW_SOURCE_ATTR] = df.select(*columns, raw)
    return result


def _id_column(name: str, dtype: DataType, kind: str) -> Column:
    """User or item id: integral types become long, strings stay strings."""
    if isinstance(dtype, IntegralType):
        return _col(name).cast(LongType()).alias(USER if kind == "user" else ITEM)
    if isinstance(dtype, StringType):
        return _col(name).alias(USER if kind == "user" else ITEM)
    raise InputError(
        f"{kind} id column {name!r} has type {dtype.simpleString()}; expected integer or string ids"
    )


def _rating_column(name: str, dtype: DataType) -> Column:
    """Rating as double; text that is not a number becomes null (never a job failure)."""
    if isinstance(dtype, NumericType):
        return _col(name).cast(DoubleType()).alias(RATING)
    if isinstance(dtype, StringType):
        return F.trim(_col(name)).try_cast(DoubleType()).alias(RATING)
    raise InputError(f"rating column {name!r} has type {dtype.simpleString()}; expected numbers")


def _timestamp_column(name: str, dtype: DataType) -> Column:
    """Timestamp as long seconds: integers as they are, date/times as Unix seconds."""
    column = _col(name)
    if isinstance(dtype, IntegralType):
        value = column.cast(LongType())
    elif isinstance(dtype, FloatType | DoubleType | DecimalType):
        value = column.try_cast(LongType())
    elif isinstance(dtype, TimestampType | TimestampNTZType | DateType):
        value = F.unix_seconds(column.cast(TimestampType()))
    elif isinstance(dtype, StringType):
        text = F.trim(column)
        value = F.coalesce(text.try_cast(LongType()), F.unix_seconds(F.try_to_timestamp(text)))
    else:
        raise InputError(
            f"timestamp column {name!r} has type {dtype.simpleString()}; "
            "expected integer seconds or a date/time"
        )
    return value.alias(TIMESTAMP)


def _resolve_columns(df: DataFrame, wanted: list[str], path: str) -> list[str]:
    """Map requested column names to the source's (case-insensitively, like Spark)."""
    present = df.columns
    by_lower: dict[str, list[str]] = {}
    for name in present:
        by_lower.setdefault(name.lower(), []).append(name)
    resolved, missing = [], []
    for name in wanted:
        if name in present:
            resolved.append(name)
        elif len(by_lower.get(name.lower(), [])) == 1:
            resolved.append(by_lower[name.lower()][0])
        else:
            missing.append(name)
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        listed = ", ".join(present) if present else "(none)"
        raise InputError(
            f"missing {noun} {', '.join(missing)} in {path}; columns present: {listed}"
        )
    return resolved


def _empty_strings(spark: SparkSession) -> DataFrame:
    """An empty DataFrame with string columns c0..c3 (for empty headerless files)."""
    return spark.createDataFrame([], _STRING_FIELDS)


def _col(name: str) -> Column:
    """Column by exact name (dots and spaces are not interpreted)."""
    return F.col("`" + name.replace("`", "``") + "`")


def _guarded(path: str, fmt: str, load: Callable[[], DataFrame]) -> DataFrame:
    """Run ``load`` and turn Spark's read errors into a one-line :class:`InputError`."""
    try:
        return load()
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 - classic, Py4J and Connect errors alike
        cause = _first_line(error)
        if "PATH_NOT_FOUND" in cause or "Path does not exist" in cause:
            raise InputError(f"input not found: {path}") from error
        raise InputError(f"cannot read {path} as {fmt}: {cause}") from error


def _first_line(error: BaseException) -> str:
    """First non-empty line of an exception message, shortened."""
    line = ""
    for part in str(error).splitlines():
        part = part.strip().lstrip(":").strip()
        # Py4J (classic Spark) puts "An error occurred while calling o91.parquet." first
        # and the Java exception, class name first, on the next line.
        if not part or part.startswith("An error occurred while calling"):
            continue
        line = _JAVA_EXCEPTION_PREFIX.sub("", part)
        break
    line = line or type(error).__name__
    if len(line) > _MAX_CAUSE_CHARS:
        line = line[: _MAX_CAUSE_CHARS - 3] + "..."
    return line


# --------------------------------------------------------------------------------------
# Paths and format detection
# --------------------------------------------------------------------------------------


def _local_path(path: str) -> str | None:
    """The local file system path for ``path``, or None for other file systems."""
    parsed = urlparse(path)
    if parsed.scheme == "file":
        return parsed.path
    if parsed.scheme and len(parsed.scheme) > 1:  # not a Windows drive letter
        return None
    return path


def _has_glob(path: str) -> bool:
    return any(char in _GLOB_CHARS for char in path)


def _check_exists(path: str) -> None:
    """Raise ``input not found`` for a missing local path (others fail at read time)."""
    if not path or not path.strip():
        raise InputError("input not found: (empty path)")
    local = _local_path(path)
    if local is None:
        return
    if _has_glob(local):
        if "{" not in local and not glob.glob(local):
            raise InputError(f"input not found: {path}")
        return
    if not os.path.exists(local):
        raise InputError(f"input not found: {path}")
    if not os.access(local, os.R_OK):
        raise InputError(f"input not readable: {path}")


def _basename(path: str) -> str:
    local = _local_path(path)
    name = urlparse(path).path if local is None else local
    return os.path.basename(name.rstrip("/"))


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name


def _list_dir(spark: SparkSession, path: str) -> list[str] | None:
    """Data file names under ``path`` if it is a directory, else None.

    Local directories are listed with :mod:`os`; other file systems through Spark's file
    index (``inputFiles`` of a text source: no data is read).
    """
    local = _local_path(path)
    if local is not None and not _has_glob(local):
        if not os.path.isdir(local):
            return None
        names = []
        for root, dirs, files in os.walk(local):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
            rel = os.path.relpath(root, local)
            names += [f if rel == "." else f"{rel}/{f}" for f in files]
        return [n for n in names if not os.path.basename(n).startswith((".", "_"))]
    files = _guarded(path, "a directory", lambda: spark.read.text(path)).inputFiles()
    if len(files) == 1 and _basename(files[0]) == _basename(path):
        return None  # the path is the file itself
    prefix = urlparse(path).path.rstrip("/") + "/"
    names = []
    for file in files:
        file_path = urlparse(file).path
        names.append(file_path.split(prefix, 1)[1] if prefix in file_path else _basename(file))
    return names


def _detect_format(spark: SparkSession, path: str) -> tuple[str, str]:
    """Pick ``(format, path to read)`` from the path name or the directory's content."""
    name = _basename(path).lower()
    if name in ("u.data", "ratings.dat"):
        return "movielens", path
    if name.endswith(".parquet"):
        return "parquet", path
    if name.endswith(".tsv") or name.endswith(".tab"):
        return "tsv", path
    if name.endswith(".csv"):
        return ("movielens" if _has_movielens_header(spark, path) else "csv"), path
    names = None if _has_glob(path) else _list_dir(spark, path)
    if names:
        top = set(names)
        for movielens in MOVIELENS_FILES:
            if movielens in top:
                return "movielens", _join(path, movielens)
        suffixes = {os.path.splitext(n)[1].lower() for n in names if not n.endswith(".crc")}
        if ".parquet" in suffixes:
            return "parquet", path
        if suffixes == {".csv"}:
            return ("movielens" if _has_movielens_header(spark, path) else "csv"), path
        if suffixes and suffixes <= {".tsv", ".tab"}:
            return "tsv", path
    raise InputError(
        f"could not determine the input format of {path}; pass --format ({', '.join(FORMATS[1:])})"
    )


def _has_movielens_header(spark: SparkSession, path: str) -> bool:
    """True if a CSV file's header is MovieLens' ``userId,movieId,rating[,timestamp]``."""
    local = _local_path(path)
    if local is not None and os.path.isfile(local):
        try:
            with open(local, encoding="utf-8", errors="replace") as handle:
                header = handle.readline()
        except OSError as error:
            raise InputError(f"cannot read {path}: {_first_line(error)}") from error
        columns = [part.strip().strip('"') for part in header.strip().split(",")]
    else:
        # Header only: without inferSchema this reads one line, not the data.
        columns = _guarded(path, "csv", lambda: spark.read.csv(path, header=True)).columns
    return tuple(columns[:3]) == MOVIELENS_CSV_HEADER[:3]


def _movielens_kind(path: str) -> str:
    """``data`` (tab), ``dat`` (``::``) or ``csv`` (headed) from a MovieLens file name."""
    name = _basename(path).lower()
    for suffix in ("data", "dat", "csv"):
        if name.endswith("." + suffix):
            return suffix
    raise InputError(
        f"cannot tell which MovieLens file {path} is; "
        f"expected one of {', '.join(MOVIELENS_FILES)} or a directory holding one"
    )


def _movielens_file(spark: SparkSession, path: str) -> str:
    """The ratings file to read for ``--format movielens`` (a file or a directory)."""
    names = None if _has_glob(path) else _list_dir(spark, path)
    if names is None:
        return path
    for movielens in MOVIELENS_FILES:
        if movielens in names:
            return _join(path, movielens)
    raise InputError(
        f"no MovieLens ratings file in {path}; expected one of {', '.join(MOVIELENS_FILES)}"
    )


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


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
    _require_columns(df, (USER, ITEM, RATING))
    source = vars(df).get(_RAW_SOURCE_ATTR)
    raw = F.col(_RAW_RATING) if source is not None else None
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
    row = data.agg(*aggregates).collect()[0].asDict(recursive=True)

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
    return ", ".join(f"{key}={_show(value)}" for key, value in example.items())


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return "null" if value is None else str(value)


def _require_columns(df: DataFrame, names: tuple[str, ...]) -> None:
    present = df.columns
    missing = [name for name in names if name not in present]
    if missing:
        raise InputError(
            f"ratings are missing column(s) {', '.join(missing)}; "
            f"columns present: {', '.join(present) or '(none)'}"
        )


# --------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------


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
    _require_columns(df, (USER, ITEM, RATING))
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
        latest = F.max(F.struct(*[_col(c) for c in order])).alias("_latest")
        merged = df.groupBy(*keys).agg(latest)
        nested = F.col("_latest")
        return merged.select(
            *[nested.getField(c).alias(c) if c in order else _col(c) for c in columns]
        )

    combine = F.sum if name == "sum" else F.avg
    aggregates = [combine(F.col(RATING)).cast(DoubleType()).alias(RATING)]
    if has_timestamp:
        aggregates.append(F.max(F.col(TIMESTAMP)).alias(TIMESTAMP))
    aggregates += [F.max(_col(c)).alias(c) for c in others]
    return df.groupBy(*keys).agg(*aggregates).select(*[_col(c) for c in columns])


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
            f"(e.g. user={_show(ex[USER])}, item={_show(ex[ITEM])}: {ex['n']} ratings); "
            "choose a duplicate policy: sum, mean or last"
        )


# --------------------------------------------------------------------------------------
# Hold-out split
# --------------------------------------------------------------------------------------

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
    _require_columns(df, (USER, ITEM))
    uniform = holdout_uniform(seed)
    return df.filter(uniform >= F.lit(value)), df.filter(uniform < F.lit(value))
