"""Options of the walsspark commands: names, defaults and the input formats."""

from __future__ import annotations

import tomllib
from typing import Any

from walsspark.errors import InputError

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
    "reg_offset": 0.0,
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

# How `walsspark tune` chooses its candidates (walsspark.tuning).
SEARCH_METHODS = ("grid", "random", "halving")
# Defaults of `walsspark tune`'s own options; every other option is one of `walsspark
# train`'s (TRAIN_DEFAULTS), fixed for all trials.
TUNE_DEFAULTS: dict[str, Any] = {
    "grid": None,
    # None: a grid search of a grid file made of lists, else a random search.
    "search": None,
    "trials": 20,
    "eta": 3,
    "metric": "ndcg@10",
    "validation": "user-fraction:0.2",
    "min_rating": None,
    "output": None,
    "overwrite": False,
    "master": None,
}
# The options of `walsspark train` that `walsspark tune` takes (fixed for every trial).
TUNE_TRAIN_OPTIONS = (
    "input format user_col item_col rating_col timestamp_col id_type header duplicates rank "
    "sweeps seed num_user_blocks num_item_blocks preset implicit_prefs alpha confidence epsilon "
    "regularization reg_exponent reg_offset unobserved_weight unobserved_row_weights "
    "unobserved_col_weights row_weights col_weights weight_col solver cg_steps tol".split()
)


def read_toml(path: str, what: str) -> dict[str, Any]:
    """The table of a TOML file; one line naming ``what`` (e.g. "config file") and the
    problem when it is missing or unreadable.

    Raises
    ------
    InputError
    """
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"cannot read {what} {path}: {error}") from None
