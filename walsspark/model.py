"""A trained model on disk: its metadata plus Parquet factor tables.

Layout of a model directory, the same on every file system (a directory Spark wrote)::

    metadata/        one text part file holding one JSON line: format tag and version,
                     every hyperparameter, the data's column names and id types, the
                     per-sweep loss history and the holdout evaluation
    user_factors/    Parquet: id (original user id), features (array<float>, k factors)
    item_factors/    Parquet: id (original item id), features (array<float>)
    user_blocks/     Parquet, one row per training block (walsspark.block_tables.factor_blocks):
    item_blocks/     its ids, factors and training pairs; ``recommend`` scores these as
                     they are, excluding exactly the pairs trained on, with no shuffle.
                     Written when ``metadata["factor_blocks"]`` is true.

``metadata/`` is written last: a directory without it is no model. On the driver's own
disk the model is written under a temporary sibling name and renamed into place when
complete; elsewhere it is written in place, and an old model it replaces loses its
metadata first (:meth:`walsspark.storage.Storage.write_output`). Models of format
version 1 (a ``metadata.json`` file, written before models could live on other file
systems) still load.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession

from walsspark import __version__
from walsspark.errors import InputError, first_line
from walsspark.params import WALSParams
from walsspark.paths import join
from walsspark.storage import Storage

log = logging.getLogger("walsspark")
FORMAT_VERSION = 2
METADATA_DIR = "metadata"
LEGACY_METADATA_FILE = "metadata.json"
FACTOR_DIRS = ("user_factors", "item_factors")
BLOCK_DIRS = {"users": "user_blocks", "items": "item_blocks"}
MODEL_TABLES = frozenset(FACTOR_DIRS) | frozenset(BLOCK_DIRS.values())
# Metadata keys the writer sets (the format's and Spark ML's), not the run's.
WRITER_KEYS = frozenset(
    {"format", "format_version", "walsspark_version", "created_at", "factor_blocks"}
    | {"class", "uid", "timestamp", "sparkVersion", "paramMap", "defaultParamMap"}
)


def read_metadata(storage: Storage, path: str) -> dict:
    """The parsed metadata of the model at ``path``, its tables checked to be there.

    Raises
    ------
    InputError
        No directory, no metadata, unreadable or untagged metadata, a newer format
        version, or a missing table.
    LookupError
        When ``path`` is not driver-local and ``storage`` has no session yet.
    """
    names = storage.files(path)
    if names is None:
        raise InputError(f"model directory not found: {path}")
    if names == [""]:
        raise InputError(f"not a walsspark model (a file, not a directory): {path}")
    if any(name.startswith(METADATA_DIR + "/part-") for name in names):
        source = join(path, METADATA_DIR)
    elif LEGACY_METADATA_FILE in names:
        source = join(path, LEGACY_METADATA_FILE)
    elif any(name.split("/", 1)[0] in MODEL_TABLES for name in names):
        # Tables without the metadata written last: a write that did not finish.
        raise InputError(
            f"incomplete walsspark model (no {METADATA_DIR}/, its write did not finish): {path}"
        )
    else:
        raise InputError(f"not a walsspark model (no {METADATA_DIR}/): {path}")
    try:
        text = storage.read_text(source)
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {source}: {error}") from None
    if not text.strip():
        raise InputError(f"incomplete walsspark model (its metadata is empty): {path}")
    try:
        metadata = json.loads(text)
    except ValueError as error:
        raise InputError(f"cannot read the metadata of {path}: {error}") from None
    if not isinstance(metadata, dict) or metadata.get("format") != "walsspark-model":
        raise InputError(f"not a walsspark model (its metadata lacks the format tag): {path}")
    version = metadata.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise InputError(f"not a walsspark model (format version {version!r}): {path}")
    if version > FORMAT_VERSION:
        raise InputError(
            f"model format version {metadata.get('format_version')} is newer than this "
            f"walsspark reads ({FORMAT_VERSION}): {path}"
        )
    tables = list(FACTOR_DIRS)
    if metadata.get("factor_blocks"):
        tables += list(BLOCK_DIRS.values())
    for name in tables:
        if not any(entry.startswith(name + "/") for entry in names):
            raise InputError(f"incomplete walsspark model (no {name}/): {path}")
    return metadata


@dataclass
class SavedModel:
    """User and item factors with the metadata of the run that produced them.

    Attributes
    ----------
    metadata : dict
        The parsed metadata.
    user_factors, item_factors : DataFrame
        ``id``, ``features`` (array<float>).
    path : str, optional
        Where the model was read from, as given.
    location : str, optional
        The same as Spark reads it (driver-local paths as ``file://`` URIs).
    """

    metadata: dict
    user_factors: DataFrame
    item_factors: DataFrame
    path: str | None = None
    location: str | None = None

    def factor_blocks(self, spark: SparkSession, side: str) -> DataFrame | None:
        """The saved factor blocks of ``side`` ("users" or "items"), if the model has them."""
        if not self.metadata.get("factor_blocks") or self.location is None:
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
        return _read_parquet(spark, join(self.location, BLOCK_DIRS[side]), schema)

    @property
    def params(self) -> WALSParams:
        return WALSParams.from_dict(self.metadata["params"])

    @property
    def rank(self) -> int:
        return int(self.metadata["params"]["rank"])

    @classmethod
    def load(cls, spark: SparkSession, path: str, storage: Storage | None = None) -> SavedModel:
        """Read a model directory written by :func:`save_model`, on any file system."""
        if storage is None:
            from walsspark.session import storage_for_session

            storage = storage_for_session(spark)
        metadata = read_metadata(storage, path)
        location = storage.uri(path)
        data = metadata.get("data", {})
        user_schema, item_schema = (
            f"id {data[name]}, features array<float>" if name in data else None
            for name in ("user_id_type", "item_id_type")
        )
        model = cls(
            metadata=metadata,
            user_factors=_read_parquet(spark, join(location, "user_factors"), user_schema),
            item_factors=_read_parquet(spark, join(location, "item_factors"), item_schema),
            path=path,
            location=location,
        )
        try:
            model.check_against_metadata(spark)
        except InputError:
            raise
        except Exception as error:  # noqa: BLE001 - classic, Py4J and Connect errors alike
            # A torn or corrupted file (Parquet, checksum): the model cannot be served.
            raise InputError(f"damaged walsspark model {path}: {first_line(error)}") from None
        return model

    def check_against_metadata(self, spark: SparkSession) -> None:
        """Refuse a model whose tables disagree with its metadata: a rank that is not the
        factors' length, fewer (or more) ids in its factor tables or blocks than it records
        (a deleted part file). Factor row counts come from the Parquet footers; one row of
        each factor table and the blocks' id lists are read.

        Raises
        ------
        InputError
            One line naming the model, the table and both numbers.
        """
        from pyspark.sql import functions as F

        rank = self.metadata.get("params", {}).get("rank")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise InputError(f"damaged walsspark model {self.path}: its rank is {rank!r}")
        data = self.metadata.get("data", {})
        for name, table, count_key in (
            ("user_factors", self.user_factors, "num_users"),
            ("item_factors", self.item_factors, "num_items"),
        ):
            first = table.select(F.size("features").alias("k")).limit(1).collect()
            if first and first[0]["k"] != rank:
                raise InputError(
                    f"damaged walsspark model {self.path}: {name}/ holds {first[0]['k']} "
                    f"factors per id, its metadata says rank {rank}"
                )
            _check_count(self.path, f"{name}/", table.count(), data.get(count_key), "ids")
        for side, count_key in (("users", "num_users"), ("items", "num_items")):
            blocks = self.factor_blocks(spark, side)
            if blocks is not None:
                # Ids, not block rows: a block can be empty (more blocks than ids).
                ids = blocks.agg(F.sum(F.size("ids")).alias("n")).collect()[0]["n"] or 0
                _check_count(self.path, f"{BLOCK_DIRS[side]}/", ids, data.get(count_key), "ids")


def _check_count(path: str | None, table: str, found: int, recorded, what: str) -> None:
    if isinstance(recorded, int) and not isinstance(recorded, bool) and found != recorded:
        raise InputError(
            f"damaged walsspark model {path}: {table} holds {found} {what}, its metadata "
            f"records {recorded}"
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
    storage: Storage | None = None,
    ml_keys: dict | None = None,
) -> None:
    """Write a model directory: the tables, then the metadata.

    Parameters
    ----------
    path : str
        Target directory, on any file system.
    user_factors, item_factors : DataFrame
        ``id``, ``features``.
    metadata : dict
        Everything else about the run (params, columns, history, evaluation); the format
        tag, version and creation time are added here.
    overwrite : bool
        Replace an existing model (or Spark output) there.
    factor_blocks : dict, optional
        ``{"users": DataFrame, "items": DataFrame}``: the factor blocks of training
        (:func:`walsspark.block_tables.factor_blocks`), saved as ``user_blocks/`` and
        ``item_blocks/``.
    storage : Storage, optional
        How to reach ``path``; default: as the session resolves paths.
    ml_keys : dict, optional
        The Spark ML keys (``class``, ``uid``, ``paramMap``...) of the saving
        :class:`walsspark.ml.WALSModel`; default: derived from ``metadata``
        (:func:`walsspark.ml.names.ml_metadata`), so that every model loads as one.
    """
    from walsspark.ml.names import ml_metadata

    if storage is None:
        from walsspark.session import storage_for_session

        storage = storage_for_session(user_factors.sparkSession)
    tables = {"user_factors": user_factors, "item_factors": item_factors}
    # A loaded model saved again: its old format and Spark ML keys are this writer's to set.
    metadata = {k: v for k, v in metadata.items() if k not in WRITER_KEYS}
    if factor_blocks:
        tables.update({BLOCK_DIRS[side]: frame for side, frame in factor_blocks.items()})
        metadata = {**metadata, "factor_blocks": True}
    full = {
        "format": "walsspark-model",
        "format_version": FORMAT_VERSION,
        "walsspark_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **metadata,
        **(
            ml_keys
            or ml_metadata(
                metadata.get("params", {}),
                metadata.get("data", {}),
                user_factors.sparkSession.version,
            )
        ),
    }
    # One line: readable by any line-based reader (Spark ML's metadata is read the same way).
    text = json.dumps(full, sort_keys=False, default=_json_default)
    writers = [(name, parquet_writer(table)) for name, table in tables.items()]
    log.info("writing the model to %s", storage.describe(path))
    storage.write_output(path, overwrite, [*writers, (METADATA_DIR, storage.text_writer(text))])


def parquet_writer(table: DataFrame):
    """A table writer (:data:`walsspark.storage.TableWriter`) of ``table`` as Parquet."""

    def write(target: str, mode: str) -> None:
        table.write.mode(mode).parquet(target)

    return write


def _json_default(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
