"""Which format an input is in, and whether it is there at all.

``auto`` picks the format from the path name (``u.data``, ``ratings.dat``, ``*.parquet``,
``*.csv``, ``*.tsv``) or from the files of a directory. Directories are listed through
:class:`walsspark.storage.Storage`: with :mod:`os` on the driver's own disk, through
Spark's file index on every other file system.
"""

from __future__ import annotations

import glob
import os

from walsspark.errors import InputError, guarded_read
from walsspark.paths import join, uri_path
from walsspark.storage import Storage

FORMATS: tuple[str, ...] = ("auto", "parquet", "csv", "tsv", "movielens")
"""Values accepted by :func:`walsspark.ratings_read.read_ratings` for ``fmt``."""

# MovieLens file names, in the order a directory is searched for them.
MOVIELENS_FILES: tuple[str, ...] = ("u.data", "ratings.dat", "ratings.csv")
MOVIELENS_CSV_HEADER: tuple[str, ...] = ("userId", "movieId", "rating", "timestamp")
_GLOB_CHARS = frozenset("*?[{")


def has_glob(path: str) -> bool:
    return any(char in _GLOB_CHARS for char in path)


def basename(path: str) -> str:
    return uri_path(path).rstrip("/").rsplit("/", 1)[-1]


def check_input_exists(storage: Storage, path: str, what: str = "input") -> None:
    """Raise ``<what> not found`` for a missing path.

    Driver-local paths are checked with :mod:`os` (also before Spark starts); others
    through Spark's listing once there is a session (a no-op before).
    """
    if not path or not path.strip():
        raise InputError(f"{what} not found: (empty path)")
    local = storage.local(path)
    if local is not None:
        if has_glob(local):
            if "{" not in local and not glob.glob(local):
                raise InputError(f"{what} not found: {path}")
            return
        if not os.path.exists(local):
            raise InputError(f"{what} not found: {path}")
        if not os.access(local, os.R_OK):
            raise InputError(f"{what} not readable: {path}")
        return
    if storage.exists(path) is False:
        raise InputError(f"{what} not found: {path}")


def _list_dir(storage: Storage, path: str) -> list[str] | None:
    """Data file names under ``path`` if it is a directory, else None."""
    if has_glob(path):
        return None
    names = storage.files(path)
    return None if names in (None, [""]) else names


def detect_format(storage: Storage, path: str) -> tuple[str, str]:
    """Pick ``(format, path to read)`` from the path name or the directory's content."""
    name = basename(path).lower()
    if name in ("u.data", "ratings.dat"):
        return "movielens", path
    if name.endswith(".parquet"):
        return "parquet", path
    if name.endswith(".tsv") or name.endswith(".tab"):
        return "tsv", path
    if name.endswith(".csv"):
        return ("movielens" if movielens_header(storage, path) else "csv"), path
    names = _list_dir(storage, path)
    if names:
        top = set(names)
        for movielens in MOVIELENS_FILES:
            if movielens in top:
                return "movielens", join(path, movielens)
        suffixes = {os.path.splitext(n)[1].lower() for n in names}
        if ".parquet" in suffixes:
            return "parquet", path
        if suffixes == {".csv"}:
            return ("movielens" if movielens_header(storage, path) else "csv"), path
        if suffixes and suffixes <= {".tsv", ".tab"}:
            return "tsv", path
    raise InputError(
        f"could not determine the input format of {path}; pass --format ({', '.join(FORMATS[1:])})"
    )


def csv_header(storage: Storage, path: str) -> list[str]:
    """The column names in the header line of a CSV file (or of a directory's first)."""
    local = storage.local(path)
    if local is not None and os.path.isfile(local):
        try:
            with open(local, encoding="utf-8", errors="replace") as handle:
                header = handle.readline()
        except OSError as error:
            raise InputError(f"cannot read {path}: {error.strerror or error}") from None
        return [part.strip().strip('"') for part in header.strip().split(",")] if header else []
    # Header only: without inferSchema this reads one line, not the data.
    spark, location = storage.spark, storage.uri(path)
    return guarded_read(path, "csv", lambda: spark.read.csv(location, header=True).columns)


def movielens_header(storage: Storage, path: str) -> list[str] | None:
    """The header of a MovieLens ``ratings.csv`` (``userId,movieId,rating[,timestamp]``),
    or None when the CSV has another header."""
    columns = csv_header(storage, path)
    return columns if tuple(columns[:3]) == MOVIELENS_CSV_HEADER[:3] else None


def movielens_kind(path: str) -> str:
    """``data`` (tab), ``dat`` (``::``) or ``csv`` (headed) from a MovieLens file name."""
    name = basename(path).lower()
    for suffix in ("data", "dat", "csv"):
        if name.endswith("." + suffix):
            return suffix
    raise InputError(
        f"cannot tell which MovieLens file {path} is; "
        f"expected one of {', '.join(MOVIELENS_FILES)} or a directory holding one"
    )


def movielens_file(storage: Storage, path: str) -> str:
    """The ratings file to read for ``--format movielens`` (a file or a directory)."""
    names = _list_dir(storage, path)
    if names is None:
        return path
    for movielens in MOVIELENS_FILES:
        if movielens in names:
            return join(path, movielens)
    raise InputError(
        f"no MovieLens ratings file in {path}; expected one of {', '.join(MOVIELENS_FILES)}"
    )
