"""Delimited text (CSV, TSV) read as written: every field as text, typed by one pass.

Spark's ``inferSchema`` reads every field that looks like a number as one, so the user ids
"007" and "7" became one user 7 (with the mean of their ratings). Here every field is read
as text, and one aggregation pass over the rows decides the types. It takes the place of
inferSchema's own pass over every row, so the data is read as often as before; the pass
does more per row (measured on 2 million rows, 53 MB, on a loaded 2-core machine, median of
8: inferSchema 3.6 s, this pass with the header read 4.9 s). The pass

- types the id columns: ``auto`` keeps a column's ids as ``long`` when every one is a
  canonical base-10 integer that fits 64 bits (no leading zeros, no ``+``, no spaces: it
  prints back as written), else as text; ``string`` keeps them as text; ``integer`` parses
  them as integers (``"007"`` is 7) and reports the ids that are none;
- makes the rating and weight columns doubles when they hold only numbers (else they stay
  text, for :func:`walsspark.ratings_check.validate_ratings` to show the bad values);
- counts malformed rows, with another number of fields than the header line (or, without
  a header, the first line) has: Spark's reader would cut or pad them silently.

Problems found are raised as one-line :class:`~walsspark.errors.InputError`, bad rows with
their count and an example, like :func:`walsspark.ratings_check.validate_ratings` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812 - the usual PySpark alias
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from walsspark.errors import InputError, guarded_read
from walsspark.options import ID_TYPES
from walsspark.storage import Storage

SEPARATORS: dict[str, str] = {"csv": ",", "tsv": "\t"}
"""The field separator of each delimited-text format."""

# Spark's CSV reader puts the raw text of a row whose field count differs from the schema's
# into this (otherwise absent) column.
MALFORMED = "_walsspark_malformed_line"
# Spark names a header field that is empty _c<position>.
_UNNAMED = re.compile(r"_c\d+")
_MAX_EXAMPLE_CHARS = 200


def rows_have(count: int) -> str:
    """``1 row has`` or ``3 rows have``: the start of a bad-rows message."""
    return f"{count} row has" if count == 1 else f"{count} rows have"


def check_read_options(id_type: str | tuple[str, str], header: bool | None) -> tuple[str, str]:
    """The (user, item) id types of ``id_type`` (one for both, or a pair), checked, and
    ``header`` checked to be true, false or None (the format's default)."""
    pair = (id_type, id_type) if isinstance(id_type, str) else tuple(id_type)
    for value in pair:
        if value not in ID_TYPES:
            raise InputError(f"id type must be one of {', '.join(ID_TYPES)}, got {value!r}")
    if header is not None and not isinstance(header, bool):
        raise InputError(f"header must be true or false, got {header!r}")
    return pair[0], pair[1]


@dataclass(frozen=True)
class TextInput:
    """A delimited-text input read with every field as text (nothing read yet but its
    first line).

    Attributes
    ----------
    path : str
        The input as the user named it (for messages).
    fmt : str
        ``csv`` or ``tsv``.
    rows : DataFrame
        One string column per field (:attr:`columns`).
    scan : DataFrame
        The same rows with :data:`MALFORMED`, read without column pruning: Spark only
        notices a row's extra fields when it splits the whole row.
    columns : list of str
        The header's names, or ``c0``, ``c1``... (as many as the first line has fields).
    header : bool
        Whether the first line is a header.
    header_given : bool
        Whether the user said so (else it is the format's default).
    first_line : list of str
        The first line's fields as Spark names them (a header's names).
    """

    path: str
    fmt: str
    rows: DataFrame
    scan: DataFrame
    columns: list[str]
    header: bool
    header_given: bool
    first_line: list[str]

    def check_names(self, wanted: list[str]) -> None:
        """Refuse a header of numbers when named columns are missing: the file has none."""
        present = {name.lower() for name in self.columns}
        if all(name.lower() in present for name in wanted):
            return
        fields = [name for name in self.columns if not _UNNAMED.fullmatch(name)]
        if fields and all(_is_number(name) for name in fields):
            raise InputError(
                f"{self.path} seems to have no header line (its first line holds numbers, "
                f"not the column names {', '.join(wanted)}): pass --no-header to read "
                "user, item, rating[, timestamp] by position"
            )


def read_text(storage: Storage, path: str, fmt: str, header: bool | None) -> TextInput:
    """Open ``path`` as ``fmt`` (csv or tsv) text with every field a string.

    ``header`` None means the format's default: CSV has a header line, TSV has none.
    Reads the first line only (Spark's header read).
    """
    spark, location = storage.spark, storage.uri(path)
    separator = SEPARATORS[fmt]
    has_header = (fmt == "csv") if header is None else header
    # Spark names the columns after the first line's fields; without inferSchema that read
    # is of one line, not of the data.
    first = guarded_read(
        path, fmt, lambda: spark.read.csv(location, sep=separator, header=True).columns
    )
    if not first:  # a zero-byte file (or only empty lines)
        raise InputError(f"input has no ratings: {path} is empty")
    columns = list(first) if has_header else [f"c{i}" for i in range(len(first))]
    fields = [StructField(name, StringType(), True) for name in columns]

    def load(schema: StructType, prune: bool) -> DataFrame:
        reader = spark.read.option("columnPruning", str(prune).lower())
        frame = reader.csv(
            location,
            sep=separator,
            header=has_header,
            schema=schema,
            columnNameOfCorruptRecord=MALFORMED,
        )
        frame.schema  # noqa: B018 - forces analysis (lazy on Spark Connect) inside the guard
        return frame

    malformed = StructType([*fields, StructField(MALFORMED, StringType(), True)])
    return TextInput(
        path=path,
        fmt=fmt,
        rows=guarded_read(path, fmt, lambda: load(StructType(fields), True)),
        scan=guarded_read(path, fmt, lambda: load(malformed, False)),
        columns=columns,
        header=has_header,
        header_given=header is not None,
        first_line=list(first),
    )


def typed_text(text: TextInput, ids: dict[str, str], numbers: list[str], rating: str) -> DataFrame:
    """The rows of ``text`` with the id columns and number columns typed, after one pass.

    Parameters
    ----------
    text : TextInput
    ids : dict of str to str
        Id column name -> id type (``auto``, ``string`` or ``integer``).
    numbers : list of str
        The rating and weight columns: doubles when every value is a number.
    rating : str
        The rating column (a header line read as data shows there first).

    Raises
    ------
    InputError
        Malformed rows, a header line read as data, or (``integer``) ids that are not
        64-bit integers; each with the count and an example.
    """
    line = F.col(MALFORMED)
    # Condition, and the value to show as an example (None: only the count is needed).
    checks: dict[str, tuple[Column, Column | None]] = {"malformed": (line.isNotNull(), line)}
    for name, id_type in ids.items():
        value = _column(name)
        if id_type == "auto":
            # Canonical: the integer prints back as written ("007", "+7", " 7" do not).
            canonical = value.try_cast(LongType()).cast(StringType()) == value
            not_canonical = value.isNotNull() & ~F.coalesce(canonical, F.lit(False))
            checks[f"text:{name}"] = (not_canonical, None)
        elif id_type == "integer":
            checks[f"integer:{name}"] = (_as_long(value).isNull() & value.isNotNull(), value)
    for name in numbers:
        value = _column(name)
        checks[f"number:{name}"] = (value.isNotNull() & _as_double(value).isNull(), None)
    header_row = _header_row(text, ids, rating)
    if header_row is not None:
        checks["header_row"] = (header_row, None)
    aggregates = []
    for i, (condition, example) in enumerate(checks.values()):
        aggregates.append(F.sum(F.when(condition, 1).otherwise(0)).alias(f"n{i}"))
        if example is not None:
            aggregates.append(F.min(F.when(condition, example)).alias(f"e{i}"))
    row = guarded_read(text.path, text.fmt, lambda: text.scan.agg(*aggregates).collect()[0])
    row = row.asDict()
    found = {key: (int(row[f"n{i}"] or 0), row.get(f"e{i}")) for i, key in enumerate(checks)}

    _raise_bad_rows(text, found)
    typed = []
    for name in text.columns:
        value = _column(name)
        if ids.get(name) == "integer" or (
            ids.get(name) == "auto" and found[f"text:{name}"][0] == 0
        ):
            value = _as_long(value)
        elif name in numbers and found[f"number:{name}"][0] == 0:
            value = _as_double(value)
        typed.append(value.alias(name))
    return text.rows.select(*typed)


def _raise_bad_rows(text: TextInput, found: dict[str, tuple[int, str | None]]) -> None:
    """Raise for the first problem the pass found (malformed rows first)."""
    count, example = found["malformed"]
    if count:
        expected = "the header line's" if text.header else "the first line's"
        raise InputError(
            f"{rows_have(count)} another number of fields than {expected} "
            f"{len(text.columns)} (e.g. {_shorten(example)!r})"
        )
    if found.get("header_row", (0, None))[0]:
        raise InputError(
            f"{text.path} seems to have a header line ({', '.join(text.first_line)}): pass "
            "--header to read its columns by name (--user-col, --item-col, --rating-col)"
        )
    for key, (count, example) in found.items():
        if key.startswith("integer:") and count:
            name = key.split(":", 1)[1]
            raise InputError(
                f"{rows_have(count)} an id in column {name!r} that is not a 64-bit integer "
                f"(e.g. {_shorten(example)!r}); --id-type auto or string keeps ids as text"
            )


def _header_row(text: TextInput, ids: dict[str, str], rating: str) -> Column | None:
    """Rows equal to the first line, when the format's default says there is no header but
    the first line's rating is no number: a header line about to be read as a row."""
    if text.header or text.header_given:
        return None
    named = dict(zip(text.columns, text.first_line, strict=True))
    if _is_number(named[rating]):
        return None
    same = [_column(name) == F.lit(named[name]) for name in [*ids, rating]]
    condition = same[0]
    for other in same[1:]:
        condition = condition & other
    return condition


def _is_number(text: str) -> bool:
    """Whether ``text`` reads as a number (NaN and infinities too, as ratings do)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _as_long(value: Column) -> Column:
    return F.trim(value).try_cast(LongType())


def _as_double(value: Column) -> Column:
    return F.trim(value).try_cast(DoubleType())


def _column(name: str) -> Column:
    """Column by exact name (header names may hold dots or spaces)."""
    return F.col("`" + name.replace("`", "``") + "`")


def _shorten(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= _MAX_EXAMPLE_CHARS else text[: _MAX_EXAMPLE_CHARS - 3] + "..."
