"""Saving and loading WALS and WALSModel, on every file system and on Spark Connect.

A :class:`~walsspark.ml.WALSModel` is saved in the command line's model directory format
(:mod:`walsspark.model`): its ``metadata/`` line carries walsspark's fields and Spark ML's
(``class``, ``uid``, ``paramMap``...), so the commands serve a model saved from a notebook,
a notebook loads a model the commands trained, and Pipeline and CrossValidator models that
hold one save and load as Spark ML's do. A :class:`~walsspark.ml.WALS` estimator is saved
as Spark ML saves Params: one ``metadata/`` JSON line.

Both writers go through :class:`walsspark.storage.Storage`, not ``MLWriter.save``: pyspark's
``overwrite()`` deletes the old directory through the JVM (``FileSystemOverwrite``), which a
Spark Connect client does not have. Storage replaces only outputs walsspark wrote, and on
the driver's disk publishes a complete directory or nothing.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from pyspark.ml.util import MLReader, MLWriter
from pyspark.sql import SparkSession

from walsspark.errors import InputError
from walsspark.ml.names import ESTIMATOR_CLASS
from walsspark.paths import join

if TYPE_CHECKING:
    from walsspark.ml.estimator import WALS
    from walsspark.ml.model import WALSModel


class StorageWriter(MLWriter):
    """An MLWriter whose ``save`` writes through walsspark's storage (see the module)."""

    def __init__(self, instance) -> None:
        super().__init__()
        self.instance = instance

    def save(self, path: str) -> None:
        """Write the instance to ``path``, replacing an old output with ``overwrite()``."""
        if not isinstance(path, str):
            raise TypeError(f"path should be a string, got type {type(path).__name__}")
        try:
            self.write_to(path)
        except InputError as error:
            # Storage words its refusals for the command line.
            message = str(error).replace("pass --overwrite", "use write().overwrite()")
            raise InputError(message) from None

    def saveImpl(self, path: str) -> None:
        self.write_to(path)

    def write_to(self, path: str) -> None:
        raise NotImplementedError


class WALSModelWriter(StorageWriter):
    """Writes a :class:`~walsspark.ml.WALSModel` as a walsspark model directory."""

    def write_to(self, path: str) -> None:
        from walsspark.model import save_model
        from walsspark.session import storage_for_session

        model = self.instance
        spark = model.userFactors.sparkSession
        storage = storage_for_session(spark)
        if model._location is not None and storage.resolver.same_or_nested(path, model._location):
            # Its tables are read from there: replacing them would read what is deleted.
            raise InputError(
                f"cannot save the model over {path}: it was loaded from {model._location} "
                "and is read from there; save it to another path"
            )
        blocks = model._factor_blocks if len(model._factor_blocks) == 2 else None
        save_model(
            path,
            model.userFactors,
            model.itemFactors,
            model.metadata,
            self.shouldOverwrite,
            factor_blocks=blocks,
            storage=storage,
            ml_keys=model.ml_keys(spark.version),
        )


class WALSModelReader(MLReader["WALSModel"]):
    """Reads a walsspark model directory into a :class:`~walsspark.ml.WALSModel`."""

    def load(self, path: str) -> WALSModel:
        """The model at ``path`` (saved from a notebook or by the command line); what is
        not a complete walsspark model is refused with one line."""
        return load_model(SparkSession.active(), path)


def load_model(spark: SparkSession, path: str) -> WALSModel:
    """A :class:`~walsspark.ml.WALSModel` from a model directory, with its saved Params."""
    from walsspark.ml.model import WALSModel
    from walsspark.ml.names import ml_param_values
    from walsspark.model import SavedModel

    saved = SavedModel.load(spark, path)
    metadata = saved.metadata
    blocks = {side: saved.factor_blocks(spark, side) for side in ("users", "items")}
    model = WALSModel(
        metadata,
        saved.user_factors,
        saved.item_factors,
        {side: frame for side, frame in blocks.items() if frame is not None},
    )
    values = metadata.get("paramMap")
    if not isinstance(values, dict):  # saved before models carried Spark ML's keys
        values = ml_param_values(metadata.get("params", {}), metadata.get("data", {}))
    if isinstance(metadata.get("uid"), str):
        model._resetUid(metadata["uid"])
    model._set(**{name: value for name, value in values.items() if model.hasParam(name)})
    defaults = metadata.get("defaultParamMap") or {}
    model._setDefault(**{name: value for name, value in defaults.items() if model.hasParam(name)})
    model._location = saved.location
    return model


class WALSWriter(StorageWriter):
    """Writes a :class:`~walsspark.ml.WALS` estimator: its Params as Spark ML writes them."""

    def write_to(self, path: str) -> None:
        from walsspark.session import storage_for_session

        spark = SparkSession.active()
        estimator = self.instance
        metadata = {
            "class": ESTIMATOR_CLASS,
            "timestamp": int(round(time.time() * 1000)),
            "sparkVersion": spark.version,
            "uid": estimator.uid,
            "paramMap": {p.name: v for p, v in estimator._paramMap.items()},
            "defaultParamMap": {p.name: v for p, v in estimator._defaultParamMap.items()},
        }
        storage = storage_for_session(spark)
        text = json.dumps(metadata, separators=(",", ":"))
        storage.write_output(path, self.shouldOverwrite, [("metadata", storage.text_writer(text))])


class WALSReader(MLReader["WALS"]):
    """Reads an estimator written by :class:`WALSWriter`."""

    def load(self, path: str) -> WALS:
        """The :class:`~walsspark.ml.WALS` saved at ``path``."""
        from walsspark.ml.estimator import WALS
        from walsspark.session import storage_for_session

        storage = storage_for_session(SparkSession.active())
        try:
            metadata = json.loads(storage.read_text(join(path, "metadata")))
        except (OSError, ValueError) as error:
            raise InputError(f"not a saved WALS estimator: {path} ({error})") from None
        if not isinstance(metadata, dict) or metadata.get("class") != ESTIMATOR_CLASS:
            raise InputError(f"not a saved WALS estimator: {path}")
        estimator = WALS()
        estimator._resetUid(metadata["uid"])
        params = metadata.get("paramMap", {})
        estimator._set(
            **{name: value for name, value in params.items() if estimator.hasParam(name)}
        )
        return estimator
