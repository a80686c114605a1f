"""A trained model on disk: ``metadata.json`` plus Parquet factor tables.

Layout of a model directory::

    metadata.json    format version, every hyperparameter, the data's column names, the
                     per-sweep loss history and the holdout evaluation
    user_factors/    Parquet: id (original user id), features (array<float>, k factors)
    item_factors/    Parquet: id (original item id), features (array<float>)
    user_blocks/     Parquet, one row per training block (walsspark.train.factor_blocks):
    item_blocks/     its ids, factors and training pairs; ``recommend`` scores these as
                     they are, excluding exactly the pairs trained on, with no shuffle.
                     Written when ``metadata["factor_blocks"]`` is true.

The directory is written under a temporary sibling name and renamed into place when
complete, so a failed run never leaves a partial model at the requested path.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession

from walsspark import __version__
from walsspark.errors import InputError
from walsspark.params import WALSParams

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
BLOCK_DIRS = {"users": "user_blocks", "items": "item_blocks"}


def is_local_path(path: str) -> bool:
    """True for paths the driver can write with the file system API (no URI scheme)."""
    return "://" not in path or path.startswith("file:")


def local_path(path: str) -> str:
    """The file system path of a local path or ``file:`` URI."""
    if path.startswith("file:"):
        return "/" + path[len("file:") :].lstrip("/")
    return path


def spark_path(path: str, *parts: str) -> str:
    """The path Spark should use: local paths become ``file://`` URIs.

    The driver checks and renames local paths with the file system API; Spark resolves a
    path without a scheme against its default file system (HDFS on many clusters), so it
    is told explicitly. Local paths therefore need a local master, or a shared file system
    mounted at the same path on every node.
    """
    joined = "/".join([path.rstrip("/"), *parts]) if parts else path
    if is_local_path(joined):
        return "file://" + os.path.abspath(local_path(joined))
    return joined


def check_output_path(path: str, overwrite: bool) -> None:
    """Refuse an output path that already holds something, unless ``overwrite``."""
    if not is_local_path(path):
        return
    target = local_path(path)
    if os.path.isfile(target):
        raise InputError(f"output path is an existing file: {path}")
    if os.path.isdir(target) and os.listdir(target):
        if not overwrite:
            raise InputError(
                f"output directory is not empty: {path} (pass --overwrite to replace it)"
            )
        if not _is_walsspark_output(target):
            # --overwrite deletes the directory: never one that walsspark did not write.
            raise InputError(
                f"refusing to overwrite {path}: it is neither a walsspark model nor a "
                "Spark output directory"
            )
    parent = os.path.dirname(os.path.abspath(target)) or "."
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(f"output directory cannot be created ({existing} is a file): {path}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"output directory cannot be created (no write permission): {path}")


def _is_walsspark_output(directory: str) -> bool:
    """A model directory (tagged metadata.json) or a Spark output (``_SUCCESS`` marker)."""
    if os.path.isfile(os.path.join(directory, "_SUCCESS")):
        return True
    try:
        with open(os.path.join(directory, METADATA_FILE), encoding="utf-8") as handle:
            return json.load(handle).get("format") == "walsspark-model"
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class WALSModel:
    """User and item factors with the metadata of the run that produced them.

    Attributes
    ----------
    metadata : dict
        The parsed ``metadata.json``.
    user_factors, item_factors : DataFrame
        ``id``, ``features`` (array<float>).
    """

    metadata: dict
    user_factors: DataFrame
    item_factors: DataFrame
    path: str | None = None

    def factor_blocks(self, spark: SparkSession, side: str) -> DataFrame | None:
        """The saved factor blocks of ``side`` ("users" or "items"), if the model has them."""
        if not self.metadata.get("factor_blocks") or self.path is None:
            return None
        data = self.metadata.get("data", {})
        own, other = (
            data.get(f"{name}_id_type")
            for name in (("user", "item") if side == "users" else ("item", "user"))
        )
        schema = None
        if own and other:
            schema = (
                f"block int, ids array<{own}>, factors binary, indptr binary, cols binary, "
                f"needed_ids array<{other}>"
            )
        return _read_parquet(spark, spark_path(self.path, BLOCK_DIRS[side]), schema)

    @property
    def params(self) -> WALSParams:
        return WALSParams.from_dict(self.metadata["params"])

    @property
    def rank(self) -> int:
        return int(self.metadata["params"]["rank"])

    @classmethod
    def load(cls, spark: SparkSession, path: str) -> WALSModel:
        """Read a model directory written by :func:`save_model`."""
        target = local_path(path)
        if is_local_path(path):
            if not os.path.isdir(target):
                raise InputError(f"model directory not found: {path}")
            meta_file = os.path.join(target, METADATA_FILE)
            if not os.path.isfile(meta_file):
                raise InputError(f"not a walsspark model (no {METADATA_FILE}): {path}")
            try:
                with open(meta_file, encoding="utf-8") as handle:
                    metadata = json.load(handle)
            except (OSError, ValueError) as error:
                raise InputError(f"cannot read {meta_file}: {error}") from None
        else:
            text = "\n".join(
                row.value for row in spark.read.text(f"{path}/{METADATA_FILE}").collect()
            )
            metadata = json.loads(text)
        if metadata.get("format") != "walsspark-model":
            raise InputError(
                f"not a walsspark model ({METADATA_FILE} lacks the format tag): {path}"
            )
        if int(metadata.get("format_version", 0)) > FORMAT_VERSION:
            raise InputError(
                f"model format version {metadata.get('format_version')} is newer than this "
                f"walsspark reads ({FORMAT_VERSION}): {path}"
            )
        if is_local_path(path):
            names = ["user_factors", "item_factors"]
            if metadata.get("factor_blocks"):
                names += list(BLOCK_DIRS.values())
            for name in names:
                if not os.path.isdir(os.path.join(target, name)):
                    raise InputError(f"incomplete walsspark model (no {name}/): {path}")
        data = metadata.get("data", {})
        user_schema, item_schema = (
            f"id {data[name]}, features array<float>" if name in data else None
            for name in ("user_id_type", "item_id_type")
        )
        return cls(
            metadata=metadata,
            user_factors=_read_parquet(spark, spark_path(path, "user_factors"), user_schema),
            item_factors=_read_parquet(spark, spark_path(path, "item_factors"), item_schema),
            path=path,
        )


def _read_parquet(spark: SparkSession, path: str, schema: str | None) -> DataFrame:
    """Read Parquet with the schema the metadata gives: no inference job per table."""
    reader = spark.read if schema is None else spark.read.schema(schema)
    return reader.parquet(path)


def save_model(
    path: str,
    user_factors: DataFrame,
    item_factors: DataFrame,
    metadata: dict,
    overwrite: bool = False,
    factor_blocks: dict[str, DataFrame] | None = None,
) -> None:
    """Write a model directory (atomically for local paths).

    Parameters
    ----------
    path : str
        Target directory.
    user_factors, item_factors : DataFrame
        ``id``, ``features``.
    metadata : dict
        Everything else about the run (params, columns, history, evaluation); the format
        tag, version and creation time are added here.
    overwrite : bool
        Replace an existing non-empty directory.
    factor_blocks : dict, optional
        ``{"users": DataFrame, "items": DataFrame}``: the factor blocks of training
        (:func:`walsspark.train.factor_blocks`), saved as ``user_blocks/`` and
        ``item_blocks/``.
    """
    tables = {"user_factors": user_factors, "item_factors": item_factors}
    if factor_blocks:
        tables.update({BLOCK_DIRS[side]: frame for side, frame in factor_blocks.items()})
        metadata = {**metadata, "factor_blocks": True}
    full = {
        "format": "walsspark-model",
        "format_version": FORMAT_VERSION,
        "walsspark_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **metadata,
    }
    text = json.dumps(full, indent=2, sort_keys=False, default=_json_default)
    if not is_local_path(path):
        mode = "overwrite" if overwrite else "errorifexists"
        for name, table in tables.items():
            table.write.mode(mode).parquet(f"{path}/{name}")
        spark = user_factors.sparkSession
        spark.createDataFrame([(text,)], "value string").coalesce(1).write.mode(mode).text(
            f"{path}/{METADATA_FILE}"
        )
        return

    def write(staging: str) -> None:
        for name, table in tables.items():
            table.write.parquet(spark_path(staging, name))
        with open(os.path.join(staging, METADATA_FILE), "w", encoding="utf-8") as handle:
            handle.write(text + "\n")

    write_directory_atomically(path, overwrite, write)


def write_directory_atomically(path: str, overwrite: bool, write: Callable[[str], None]) -> None:
    """Let ``write`` fill a staging directory, then rename it to ``path``.

    A failure anywhere leaves ``path`` as it was and removes the staging directory.
    """
    target = os.path.abspath(local_path(path))
    check_output_path(target, overwrite)
    staging = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        write(staging)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.rename(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _json_default(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
