"""Reading rating data into one internal layout.

Every reader returns the same columns: ``user``, ``item``, ``rating`` (double) and, when
the input has one, ``timestamp`` (long, seconds). User and item ids keep their type
family: integral ids become ``long``, string ids stay ``string``; CSV and TSV ids are read
as written (:mod:`walsspark.delimited`: ``"007"`` and ``"7"`` are two ids unless the ids
are read as integers). The format of ``auto`` comes from :mod:`walsspark.input_format`.

Everything here uses the DataFrame API only (no RDDs, no ``sparkContext``), so it runs on
classic Spark and on Spark Connect alike, on any file system Spark reads.
"""

from __future__ import annotations

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

from walsspark.delimited import TextInput, check_read_options, read_text, typed_text
from walsspark.errors import InputError, guarded_read
from walsspark.input_format import (
    FORMATS,
    check_input_exists,
    detect_format,
    movielens_file,
    movielens_header,
    movielens_kind,
)
from walsspark.storage import Storage

USER, ITEM, RATING, TIMESTAMP = "user", "item", "rating", "timestamp"
RATING_COLUMNS: tuple[str, str, str, str] = (USER, ITEM, RATING, TIMESTAMP)
"""Internal column names: user id, item id, rating and (optional) timestamp."""

# Every MovieLens file is read as four string fields and converted afterwards, so a bad
# value becomes a null (detectable by validate_ratings) instead of failing the job.
_STRING_FIELDS = StructType(
    [StructField(name, StringType(), True) for name in ("c0", "c1", "c2", "c3")]
)

# read_ratings stores, in the returned DataFrame object's ``__dict__``, the same rows with
# the rating's raw text kept as an extra column, so validate_ratings can tell a null rating
# from a non-numeric one and show the offending text. Any transformation of the DataFrame
# returns a new object without it; validate_ratings then checks the double column only.
RAW_SOURCE_ATTR = "_walsspark_raw_rating_source"
RAW_RATING = "_walsspark_raw_rating"


def read_ratings(
    spark: SparkSession,
    path: str,
    fmt: str = "auto",
    user_col: str = "user_id",
    item_col: str = "item_id",
    rating_col: str = "rating",
    timestamp_col: str | None = None,
    extra_cols: tuple[str, ...] = (),
    storage: Storage | None = None,
    id_type: str | tuple[str, str] = "auto",
    header: bool | None = None,
) -> DataFrame:
    """Read ratings into the internal layout ``user, item, rating[, timestamp]``.

    Parameters
    ----------
    spark : SparkSession
        A classic or Spark Connect session.
    path : str
        File, directory or glob; local or any file system URI Spark can read.
    fmt : str
        ``auto``, ``parquet``, ``csv`` (a header line by default), ``tsv`` (no header
        line by default) or ``movielens`` (``u.data``, ``ratings.dat`` or ``ratings.csv``,
        or a directory holding one). ``auto`` picks the format from the path name or the
        directory's content. Text without a header line has positional columns user,
        item, rating and an optional timestamp.
    user_col, item_col, rating_col : str
        Source column names (parquet, and csv or tsv with a header line).
    timestamp_col : str, optional
        Source timestamp column (as the other names); without it the result has no
        ``timestamp`` column unless the format defines one (text without a header line
        with four columns, MovieLens).
    extra_cols : tuple of str
        Further numeric source columns to keep as doubles, named :func:`weight_alias`
        (``_w_<name>``, so that a weight column may also be, say, the rating column);
        named columns only.
    storage : Storage, optional
        How to reach ``path`` (driver-local or through Spark); default: as the session
        resolves paths.
    id_type : str or (str, str)
        How csv and tsv ids are read, for both id columns or (user, item): ``auto`` (long
        when every id of the column is a canonical base-10 integer fitting 64 bits, else
        string), ``string`` or ``integer`` (parsed: ``"007"`` is 7). Parquet and MovieLens
        ids keep their types.
    header : bool, optional
        Whether csv or tsv text starts with a header line; None: csv does, tsv does not.

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
        missing columns, an id/rating/timestamp column of an unsupported type, or (csv and
        tsv, found by their typing pass) malformed rows or ids that are not integers.
    """
    id_types = check_read_options(id_type, header)
    fmt_name = (fmt or "auto").strip().lower()
    if fmt_name not in FORMATS:
        raise InputError(f"unknown input format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    if storage is None:
        from walsspark.session import storage_for_session

        storage = storage_for_session(spark)
    check_input_exists(storage, path)

    source = path
    if fmt_name == "auto":
        fmt_name, source = detect_format(storage, path)
    elif fmt_name == "movielens":
        source = movielens_file(storage, path)

    names = (user_col, item_col, rating_col, timestamp_col)
    if fmt_name == "parquet":
        return _read_parquet(storage, path, *names, extra_cols=extra_cols)
    if fmt_name in ("csv", "tsv"):
        text = read_text(storage, path, fmt_name, header)
        return _read_text(text, names, extra_cols, id_types)
    if extra_cols:
        raise InputError(
            f"weight columns ({', '.join(extra_cols)}) need named columns, not a {fmt_name} input"
        )
    return _read_movielens(storage, source)


def weight_alias(name: str) -> str:
    """The internal name of the extra (weight) source column ``name``."""
    return f"_w_{name}"


def _read_parquet(
    storage: Storage,
    path: str,
    user_col: str,
    item_col: str,
    rating_col: str,
    timestamp_col: str | None,
    extra_cols: tuple[str, ...] = (),
) -> DataFrame:
    """Read parquet and map the named columns to the internal layout."""
    spark, location = storage.spark, storage.uri(path)

    def load() -> DataFrame:
        df = spark.read.parquet(location)
        df.schema  # noqa: B018 - forces analysis (lazy on Spark Connect) inside the guard
        return df

    df = guarded_read(path, "parquet", load)
    return ratings_from_frame(df, user_col, item_col, rating_col, timestamp_col, extra_cols, path)


def _read_text(
    text: TextInput,
    names: tuple[str, str, str, str | None],
    extra_cols: tuple[str, ...],
    id_types: tuple[str, str],
) -> DataFrame:
    """Map csv or tsv text (every field a string) to the internal layout: by the header's
    names, or by position (user, item, rating[, timestamp]) without a header line."""
    if text.header:
        named = [name for name in names if name]
        text.check_names(named + list(extra_cols))
        resolved = _resolve_columns(text.rows, named + list(extra_cols), text.path)
        sources = dict(zip(RATING_COLUMNS, resolved[: len(named)], strict=False))
        extras = resolved[len(named) :]
    else:
        if extra_cols:
            raise InputError(
                f"weight columns ({', '.join(extra_cols)}) need named columns: "
                f"{text.path} has no header line (pass --header if it has one)"
            )
        if len(text.columns) < 3:
            raise InputError(
                f"{text.fmt} input {text.path} has {len(text.columns)} column(s); "
                "expected user, item, rating and optionally timestamp"
            )
        sources = dict(zip(RATING_COLUMNS, text.columns[:4], strict=False))
        extras = []
    ids = {sources[USER]: id_types[0], sources[ITEM]: id_types[1]}
    df = typed_text(text, ids, [sources[RATING], *extras], sources[RATING])
    if not text.header:
        return _to_internal(df, sources)
    return ratings_from_frame(df, *names, extra_cols=extra_cols, source=text.path)


def ratings_from_frame(
    df: DataFrame,
    user_col: str,
    item_col: str,
    rating_col: str,
    timestamp_col: str | None = None,
    extra_cols: tuple[str, ...] = (),
    source: str = "the DataFrame",
) -> DataFrame:
    """Map a DataFrame's named columns onto the internal layout (as :func:`read_ratings`).

    Parameters
    ----------
    df : DataFrame
        Ratings as a user holds them (Parquet and CSV inputs are read into one first).
    user_col, item_col, rating_col : str
        Its id and rating columns (matched case-insensitively when unambiguous, as Spark).
    timestamp_col : str, optional
    extra_cols : tuple of str
        Numeric weight columns to keep, named :func:`weight_alias`.
    source : str
        How messages name ``df`` (a path).

    Raises
    ------
    InputError
        A missing column, or one of an unsupported type.
    """
    wanted = [user_col, item_col, rating_col] + ([timestamp_col] if timestamp_col else [])
    resolved = _resolve_columns(df, wanted + list(extra_cols), source)
    sources = dict(zip((USER, ITEM, RATING, TIMESTAMP), resolved[: len(wanted)], strict=False))
    extras = []
    for name, column_name in zip(extra_cols, resolved[len(wanted) :], strict=True):
        dtype = df.schema[column_name].dataType
        if not isinstance(dtype, NumericType):
            raise InputError(
                f"weight column {name!r} has type {dtype.simpleString()}; expected numbers"
            )
        extras.append(column(column_name).cast(DoubleType()).alias(weight_alias(name)))
    return _to_internal(df, sources, extras)


def _read_movielens(storage: Storage, path: str) -> DataFrame:
    """Read one MovieLens ratings file (``u.data``, ``ratings.dat`` or ``ratings.csv``)."""
    spark, location = storage.spark, storage.uri(path)
    kind = movielens_kind(path)

    def load() -> DataFrame:
        if kind == "dat":
            # "::" is a two-character separator, which the CSV reader of older Spark
            # versions rejects: read lines as text and split them instead.
            lines = spark.read.text(location)
            lines = lines.filter(F.trim(F.col("value")) != "")
            fields = F.split(F.col("value"), "::")
            df = lines.select(*[F.trim(F.get(fields, i)).alias(f"c{i}") for i in range(4)])
        elif kind == "data":
            df = spark.read.csv(location, sep="\t", header=False, schema=_STRING_FIELDS)
        else:
            # Read as strings under the file's own header names (a schema with other
            # names makes Spark warn on every read), then renamed c0..c3.
            header = (movielens_header(storage, path) or [])[:4]
            schema = StructType([StructField(name, StringType(), True) for name in header])
            df = spark.read.csv(location, header=True, schema=schema)
            df = df.select(*[column(name).alias(f"c{i}") for i, name in enumerate(header)])
            for missing in range(len(header), 4):
                df = df.withColumn(f"c{missing}", F.lit(None).cast(StringType()))
        df.schema  # noqa: B018 - forces analysis (lazy on Spark Connect) inside the guard
        return df

    df = guarded_read(path, "movielens", load)
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
        raw = column(sources[RATING]).alias(RAW_RATING)
        vars(result)[RAW_SOURCE_ATTR] = df.select(*columns, raw)
    return result


def _id_column(name: str, dtype: DataType, kind: str) -> Column:
    """User or item id: integral types become long, strings stay strings."""
    if isinstance(dtype, IntegralType):
        return column(name).cast(LongType()).alias(USER if kind == "user" else ITEM)
    if isinstance(dtype, StringType):
        return column(name).alias(USER if kind == "user" else ITEM)
    raise InputError(
        f"{kind} id column {name!r} has type {dtype.simpleString()}; expected integer or string ids"
    )


def _rating_column(name: str, dtype: DataType) -> Column:
    """Rating as double; text that is not a number becomes null (never a job failure)."""
    if isinstance(dtype, NumericType):
        return column(name).cast(DoubleType()).alias(RATING)
    if isinstance(dtype, StringType):
        return F.trim(column(name)).try_cast(DoubleType()).alias(RATING)
    raise InputError(f"rating column {name!r} has type {dtype.simpleString()}; expected numbers")


def _timestamp_column(name: str, dtype: DataType) -> Column:
    """Timestamp as long seconds: integers as they are, date/times as Unix seconds."""
    source = column(name)
    if isinstance(dtype, IntegralType):
        value = source.cast(LongType())
    elif isinstance(dtype, FloatType | DoubleType | DecimalType):
        value = source.try_cast(LongType())
    elif isinstance(dtype, TimestampType | TimestampNTZType | DateType):
        value = F.unix_seconds(source.cast(TimestampType()))
    elif isinstance(dtype, StringType):
        text = F.trim(source)
        # CSV and TSV fields are text: seconds with a fraction ("100.5") as doubles are.
        seconds = F.coalesce(
            text.try_cast(LongType()), text.try_cast(DoubleType()).try_cast(LongType())
        )
        value = F.coalesce(seconds, F.unix_seconds(F.try_to_timestamp(text)))
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


def column(name: str) -> Column:
    """Column by exact name (dots and spaces are not interpreted)."""
    return F.col("`" + name.replace("`", "``") + "`")
