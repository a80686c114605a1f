"""Options of the walsspark commands: names, defaults and the input formats."""

from __future__ import annotations

from typing import Any

SYNTHETIC_INPUT = "synthetic"
FORMATS = ("auto", "parquet", "csv", "tsv", "movielens")
# How CSV and TSV ids are read (walsspark.delimited): integers when every one is a canonical
# integer, as text, or parsed as integers ("007" is 7).
ID_TYPES = ("auto", "string", "integer")

# Defaults of `walsspark train` (TF WALS's where the concept is WALS-specific).
TRAIN_DEFAULTS: dict[str, Any] = {
    "input": None,
    "format": "auto",
    "user_col": "user_id",
    "item_col": "item_id",
    "rating_col": "rating",
    "timestamp_col": None,
    "id_type": "auto",
    "header": None,
    "rank": 10,
    "sweeps": 10,
    "unobserved_weight": 0.1,
    "regularization": 0.1,
    "reg_exponent": 0.0,
    "row_weights": 1.0,
    "col_weights": 1.0,
    "unobserved_row_weights": "uniform",
    "unobserved_col_weights": "uniform",
    "preset": None,
    "implicit_prefs": False,
    "alpha": 1.0,
    "confidence": "linear",
    "epsilon": 1.0,
    "weight_col": None,
    "solver": "exact",
    "cg_steps": 3,
    "tol": 0.0,
    "holdout_fraction": 0.1,
    "split": "random",
    "holdout_k": 1,
    "seed": 0,
    "num_user_blocks": None,
    "num_item_blocks": None,
    "checkpoint_interval": 10,
    "checkpoint_dir": None,
    "resume": False,
    "duplicates": "mean",
    "output": None,
    "overwrite": False,
    "master": None,
    "recommend_k": None,
    "recommendations": None,
}
# Options that must be strings when they come from a config file (the rest are checked
# by WALSParams.validate, or are booleans).
STRING_OPTIONS = frozenset(
    "input format id_type user_col item_col rating_col timestamp_col duplicates output master "
    "recommendations preset confidence weight_col solver split checkpoint_dir "
    "unobserved_row_weights unobserved_col_weights".split()
)
