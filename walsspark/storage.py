"""Files and directories on any file system Spark can reach, with or without a session.

Driver-local paths (:meth:`walsspark.paths.PathResolver.local_path`) are handled with
:mod:`os`: cheap enough to check before Spark starts, and written atomically (a staging
sibling renamed into place). Every other path goes through Spark's DataFrame readers and
writers only, never the JVM gateway, so the same code runs on Spark Connect:

- listing: the file index of a ``binaryFile`` read (``inputFiles()``: no job, no data
  read). Like every Spark listing it hides names starting with ``_`` or ``.``, so both
  backends list *visible* files only, and an output counts as Spark's when every visible
  file in it is a ``part-*`` file;
- a small document (model metadata, an evaluation): a one-partition text write, read
  back with ``spark.read.text(..., wholetext=True)``;
- replacing a directory: a write in ``overwrite`` mode (Spark deletes the directory
  first); an output made of several tables is replaced table by table, its completion
  marker (the table written last) invalidated first.

Outputs therefore have one layout on every file system: directories Spark wrote.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from walsspark.errors import InputError, first_line
from walsspark.paths import PathResolver, join, normalized, uri_path
from walsspark.staging import staged

# A table writer gets the Spark path to write and the save mode to use.
TableWriter = Callable[[str, str], None]
# The sub-directories walsspark's outputs are made of (model, split, project, the
# recommendation tables of train, a sweep checkpoint's slot, and tune's tables, which are
# one-part directories off the driver's disk): with part files directly inside, an output
# --overwrite may replace.
TABLE_DIRS = frozenset(
    "metadata user_factors item_factors user_blocks item_blocks users items train test "
    "factors recommendations checkpoint trials.parquet trials.csv best.toml".split()
)
# Spark's own output marker, hidden from listings; Spark writes it on every file system.
_NO_SUCCESS_MARKER = {"mapreduce.fileoutputcommitter.marksuccessfuljobs": "false"}


def _visible(name: str) -> bool:
    return not name.startswith((".", "_"))


@dataclass
class Storage:
    """Path operations for one command run.

    Attributes
    ----------
    resolver : PathResolver
        Which paths are the driver's own.
    spark : SparkSession, optional
        Without a session (before Spark starts) only driver-local paths can be checked;
        the checks of other paths report "unknown" (None) and run again with a session.
    """

    resolver: PathResolver
    spark: object | None = None

    # -- paths --------------------------------------------------------------------------

    def local(self, path: str) -> str | None:
        return self.resolver.local_path(path)

    def uri(self, path: str, *parts: str) -> str:
        return self.resolver.spark_path(path, *parts)

    def describe(self, path: str) -> str:
        return self.resolver.describe(path)

    # -- reading ------------------------------------------------------------------------

    def files(self, path: str) -> list[str] | None:
        """Visible files under ``path`` (relative names, ``/``-separated, recursive).

        Returns ``None`` when ``path`` does not exist, ``[""]`` when it is a file, and
        raises :class:`LookupError` when only a Spark session could tell.
        """
        local = self.local(path)
        if local is not None:
            if os.path.isfile(local):
                return [""]
            if not os.path.isdir(local):
                return None
            names = []
            for root, dirs, files in os.walk(local):
                dirs[:] = sorted(d for d in dirs if _visible(d))
                relative = os.path.relpath(root, local)
                names += [
                    name if relative == "." else f"{relative}/{name}"
                    for name in sorted(files)
                    if _visible(name)
                ]
            return names
        if self.spark is None:
            raise LookupError(path)
        return self._spark_files(path)

    def _spark_files(self, path: str) -> list[str] | None:
        reader = self.spark.read.format("binaryFile").option("recursiveFileLookup", "true")
        try:
            found = reader.load(path).inputFiles()
        except Exception as error:  # noqa: BLE001 - classic, Py4J and Connect errors alike
            cause = first_line(error)
            if "PATH_NOT_FOUND" in cause or "does not exist" in cause:
                return None
            raise InputError(f"cannot list {path}: {cause}") from None
        return relative_names(uri_path(path), [uri_path(file) for file in found])

    def exists(self, path: str) -> bool | None:
        """Whether ``path`` exists; None when it cannot be told yet (no session)."""
        try:
            return self.files(path) is not None
        except LookupError:
            return None

    def read_text(self, path: str) -> str:
        """The text of a file, or of the part files of a directory written by Spark.

        Raises
        ------
        FileNotFoundError
            When there is nothing to read there.
        """
        local = self.local(path)
        if local is not None:
            if os.path.isdir(local):
                parts = sorted(n for n in os.listdir(local) if n.startswith("part-"))
                if not parts:
                    raise FileNotFoundError(path)
                texts = []
                for name in parts:
                    with open(os.path.join(local, name), encoding="utf-8") as handle:
                        texts.append(handle.read())
                return "".join(texts)
            with open(local, encoding="utf-8") as handle:
                return handle.read()
        if self.spark is None:
            raise LookupError(path)
        try:
            rows = self.spark.read.text(path, wholetext=True).collect()
        except Exception as error:  # noqa: BLE001 - classic, Py4J and Connect errors alike
            raise FileNotFoundError(f"{path}: {first_line(error)}") from None
        if not rows:
            raise FileNotFoundError(path)
        return "".join(row.value for row in rows)

    # -- writing ------------------------------------------------------------------------

    def text_writer(self, text: str) -> TableWriter:
        """A writer of ``text`` as one part file (the layout of a small JSON document)."""

        def write(target: str, mode: str) -> None:
            from pyspark.sql import functions as F

            # From range(), not createDataFrame([...]): a session's first local relation
            # from Python costs seconds (measured 2.2 s against 0.4 s), and metadata is
            # often the first one.
            frame = self.spark.range(0, 1, 1, 1).select(F.lit(text).alias("value"))
            frame.write.mode(mode).text(target)

        return write

    def check_output(self, path: str, overwrite: bool, refuse_empty: bool = False) -> None:
        """Refuse an output path that holds something, unless ``overwrite`` and it is an
        output walsspark wrote. A no-op for paths only Spark can see while there is no
        session yet."""
        try:
            names = self.files(path)
        except LookupError:
            return
        local = self.local(path)
        if names == [""]:
            raise InputError(f"output path is an existing file: {path}")
        if names is None:
            if local is not None:
                _check_creatable(local, path)
            return
        # On the driver's disk hidden entries count too (Spark's listings skip them).
        occupied = bool(names) or (local is not None and bool(os.listdir(local)))
        if (occupied or refuse_empty) and not overwrite:
            what = "output path exists" if refuse_empty else "output directory is not empty"
            raise InputError(f"{what}: {path} (pass --overwrite to replace it)")
        foreign = _foreign_hidden(local) if local is not None and occupied else []
        if occupied and (foreign or not self._is_walsspark_output(path, names)):
            # --overwrite deletes the directory: never one that walsspark did not write.
            example = f" ({foreign[0]})" if foreign else ""
            raise InputError(
                f"refusing to overwrite {path}: it is not an output walsspark wrote{example}"
            )

    def _is_walsspark_output(self, path: str, names: list[str]) -> bool:
        """walsspark's layouts (:func:`_is_spark_table_layout`), or a model of the first
        format version (its tables and a tagged ``metadata.json`` file)."""
        if _is_spark_table_layout(names):
            return True
        if "metadata.json" not in names:
            return False
        if not _is_spark_table_layout([n for n in names if n != "metadata.json"]):
            return False
        try:
            return '"walsspark-model"' in self.read_text(join(path, "metadata.json"))
        except (OSError, LookupError, ValueError):
            return False

    def write_output(
        self, path: str, overwrite: bool, tables: Sequence[tuple[str, TableWriter]]
    ) -> None:
        """Write an output made of ``tables`` ((sub-directory, writer), ``""`` for the
        output directory itself); the last one written is the output's completion marker.

        Driver-local outputs are written to a staging sibling and renamed into place, so a
        failure leaves the path as it was. Elsewhere the tables are written in place: an
        existing output (checked by :meth:`check_output`) first loses its completion
        marker, or, if it holds anything the new tables will not replace, everything.
        """
        self.check_output(path, overwrite)
        local = self.local(path)
        if local is not None:
            self._write_staged(local, tables)
            return
        names = self.files(path) or []
        tops = {name for name, _ in tables}
        if names and overwrite and "" not in tops:
            # Files the new tables will not replace (another output's, or a table this
            # run does not write) go with the whole directory; otherwise only the old
            # completion marker goes first, so the output is never taken as complete.
            if any(name.split("/", 1)[0] not in tops for name in names):
                self._clear(path)
            else:
                self._clear(join(path, tables[-1][0]))
        # "error" (not "errorifexists", which the Spark Connect client does not know).
        mode = "overwrite" if overwrite else "error"
        for name, writer in tables:
            _write(writer, join(path, name) if name else path, mode, path)

    def _clear(self, path: str) -> None:
        """Replace a directory by an empty one (one empty part file, no ``_SUCCESS``)."""
        empty = self.spark.createDataFrame([], "value string").coalesce(1)
        empty.write.mode("overwrite").options(**_NO_SUCCESS_MARKER).text(path)

    def _write_staged(self, target: str, tables: Sequence[tuple[str, TableWriter]]) -> None:
        with staged(target) as staging:
            for name, writer in tables:
                # file:// whatever the default file system: the rename is os.rename.
                target_uri = "file://" + (join(staging, name) if name else staging)
                _write(writer, target_uri, "error", target)


# Causes of a failed write that are the output location's, not walsspark's: reported in one
# line (a failure of the computation itself keeps its traceback).
_FILESYSTEM_PROBLEMS = (
    "Permission denied",
    "AccessDenied",
    "Access Denied",
    "Mkdirs failed",
    "not a directory",
    "Not a directory",
    "PATH_ALREADY_EXISTS",
    "FileAlreadyExists",
    "No FileSystem for scheme",
    "UNSUPPORTED_FILE_SYSTEM",
    "read-only",
    "Read-only",
)


def _write(writer: TableWriter, target: str, mode: str, shown: str) -> None:
    try:
        writer(target, mode)
    except Exception as error:  # noqa: BLE001 - classic, Py4J and Connect errors alike
        cause = first_line(error)
        if any(problem in str(error) for problem in _FILESYSTEM_PROBLEMS):
            raise InputError(f"cannot write {shown}: {cause}") from None
        raise


def relative_names(root: str, files: list[str]) -> list[str]:
    """The names of ``files`` (qualified paths Spark listed) relative to ``root`` (the path
    as given, which Hadoop normalised and, when relative, put under its working directory).

    ``[""]`` when the only file is ``root`` itself. For a relative root the working
    directory is unknown: it is taken as the longest prefix, shared by every file, that
    ends in ``/<root>/`` (a directory named like its own single sub-directory, ``x/x/``
    and nothing else, would be read one level too deep).
    """
    root = normalized(root)
    if root in ("", "/"):  # a bucket or file system root
        return sorted(file.lstrip("/") for file in files)
    if root.startswith("/"):
        if files == [root]:
            return [""]
        prefix = root + "/"
        return sorted(
            f[len(prefix) :] if f.startswith(prefix) else f.rsplit("/", 1)[-1] for f in files
        )
    if len(files) == 1 and files[0].endswith("/" + root):
        return [""]
    marker = "/" + root + "/"
    first = files[0] if files else ""
    starts = [i for i in range(len(first)) if first.startswith(marker, i)]
    for start in reversed(starts):
        prefix = first[: start + len(marker)]
        if all(f.startswith(prefix) for f in files):
            return sorted(f[len(prefix) :] for f in files)
    return sorted(f.rsplit("/", 1)[-1] for f in files)


def _foreign_hidden(local: str) -> list[str]:
    """Hidden entries under a local directory that Spark did not write (``.git``, a
    ``.keep``...): Spark's listings skip them, but ``--overwrite`` would delete them."""
    found = []
    for root, dirs, files in os.walk(local):
        for name in [*dirs, *files]:
            if not _visible(name) and not _spark_bookkeeping(name):
                found.append(os.path.relpath(os.path.join(root, name), local))
        dirs[:] = [d for d in dirs if _visible(d)]
    return found


def _spark_bookkeeping(name: str) -> bool:
    """Hidden files Spark's writers leave: the success marker, checksums, commit logs."""
    return (
        name in ("_SUCCESS", "_temporary")
        or name.endswith(".crc")
        or name.startswith(("_committed_", "_started_"))
    )


def _is_spark_table_layout(names: list[str]) -> bool:
    """Part files at the top (one table), or in walsspark's table directories."""
    for name in names:
        parts = name.split("/")
        if len(parts) == 1 and parts[0].startswith("part-"):
            continue
        if len(parts) == 2 and parts[0] in TABLE_DIRS and parts[1].startswith("part-"):
            continue
        return False
    return True


def _check_creatable(local: str, shown: str) -> None:
    """Raise unless the directory ``local`` can be created by this process."""
    existing = os.path.dirname(local) or "."
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(f"output directory cannot be created ({existing} is a file): {shown}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"output directory cannot be created (no write permission): {shown}")
