"""How the pyspark.ml Params map onto a model directory, without importing pyspark.ml.

A model directory's ``metadata/`` line carries, besides walsspark's own fields, the keys
Spark ML's ``DefaultParamsReader`` reads (``class``, ``uid``, ``paramMap``,
``defaultParamMap``, ``sparkVersion``, ``timestamp``), so that a model written by the
command line loads as :class:`walsspark.ml.WALSModel`, also as a stage of a saved
Pipeline, and a model saved from a notebook serves the commands. This module is imported
by the command line, which must not pay for importing pyspark.ml (about 1.3 s).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

MODEL_CLASS = "walsspark.ml.WALSModel"
ESTIMATOR_CLASS = "walsspark.ml.WALS"

# Param name -> WALSParams field, for every Param that is part of the objective or the run.
TO_WALS_PARAMS: dict[str, str] = {
    "rank": "rank",
    "maxIter": "sweeps",
    "regParam": "regularization",
    "regExponent": "reg_exponent",
    "regOffset": "reg_offset",
    "unobservedWeight": "unobserved_weight",
    "rowWeights": "row_weights",
    "colWeights": "col_weights",
    "unobservedRowWeights": "unobserved_row_weights",
    "unobservedColWeights": "unobserved_col_weights",
    "implicitPrefs": "implicit_prefs",
    "alpha": "alpha",
    "confidence": "confidence",
    "epsilon": "epsilon",
    "weightCol": "weight_col",
    "solver": "solver",
    "cgSteps": "cg_steps",
    "tol": "tol",
    "seed": "seed",
    "numUserBlocks": "num_user_blocks",
    "numItemBlocks": "num_item_blocks",
    "checkpointInterval": "checkpoint_interval",
    "duplicates": "duplicates",
}
# Model data column -> Param.
COLUMN_PARAMS = {"user_col": "userCol", "item_col": "itemCol", "rating_col": "ratingCol"}


def ml_param_values(params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The :class:`walsspark.ml.WALSModel` Params of a model trained with ``params`` (its
    ``params`` metadata) on ``data`` (its ``data`` metadata): the columns it was trained on.
    The objective is the metadata's ``params``, not Params of the model (as MLlib's
    ``ALSModel`` has no ``regParam``)."""
    values = {name: data[key] for key, name in COLUMN_PARAMS.items() if data.get(key)}
    if params.get("weight_col"):
        values["weightCol"] = params["weight_col"]
    return values


def ml_metadata(
    params: dict[str, Any],
    data: dict[str, Any],
    spark_version: str,
    uid: str | None = None,
    param_map: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Spark ML keys of a model's metadata line.

    Parameters
    ----------
    params, data : dict
        The model's ``params`` and ``data`` metadata.
    spark_version : str
    uid : str, optional
        The model's uid; a new one by default.
    param_map : dict, optional
        The Params set on the model; default: :func:`ml_param_values`.
    """
    return {
        "class": MODEL_CLASS,
        "uid": uid or f"WALSModel_{uuid.uuid4().hex[-12:]}",
        "timestamp": int(round(time.time() * 1000)),
        "sparkVersion": spark_version,
        "paramMap": ml_param_values(params, data) if param_map is None else param_map,
        "defaultParamMap": {},
    }
