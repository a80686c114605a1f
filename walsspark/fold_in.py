"""The fold-in flow every front door shares: new ratings in, factors for their rows out.

``walsspark project`` (:mod:`walsspark.commands.project`) and
:meth:`walsspark.ml.WALSModel.projectUsers` / ``projectItems`` both call
:func:`fold_in`, which validates and merges the new ratings as training did, derives their
targets and confidences with the model's parameters and solves the new rows against the
model's fixed side (:func:`walsspark.project.project`).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from walsspark.errors import InputError
from walsspark.params import WALSParams, parse_weight_scheme


def check_foldable(params: WALSParams) -> None:
    """Refuse models whose per-id weights depend on training counts the model lacks."""
    for name in ("row_weights", "col_weights"):
        if parse_weight_scheme(name, getattr(params, name))[0] != "scalar":
            raise InputError(
                f"fold-in of a model trained with per-id {name} ({getattr(params, name)}) is "
                "not supported: they depend on training counts the model does not keep"
            )


def fold_in(
    ratings: DataFrame,
    fixed_factors: DataFrame,
    params: WALSParams,
    data: dict,
    for_side: str,
    source: str,
) -> tuple[DataFrame, DataFrame]:
    """Factors of the new ``for_side`` rows of ``ratings``.

    Parameters
    ----------
    ratings : DataFrame
        New ratings in the internal layout (``user``, ``item``, ``rating`` and the weight
        columns the parameters read, :func:`walsspark.weighting.weight_columns`).
    fixed_factors : DataFrame
        ``id``, ``features`` of the trained side that stays fixed (items for new users).
    params : WALSParams
        The model's.
    data : dict
        The model's ``metadata["data"]`` (id types, id counts).
    for_side : str
        ``"users"`` (new users against the items) or ``"items"``.
    source : str
        How to name the ratings in messages (a path, "the DataFrame").

    Returns
    -------
    factors : DataFrame
        ``id``, ``features`` (array<float>), ``rated`` (ratings of known ids used).
    new : DataFrame
        The new ratings as solved: ``row``, ``other``, ``rating`` (the target) and, with
        per-entry weights, ``confidence``; cached (the seen pairs of their recommendations).

    Raises
    ------
    InputError
        Bad ratings or weights, ids of another type than the model's, or a model with
        per-id weights.
    """
    from walsspark.duplicates import resolve_duplicates
    from walsspark.project import project
    from walsspark.ratings_check import validate_ratings
    from walsspark.ratings_read import weight_alias
    from walsspark.weighting import check_weights, entry_weights, weight_columns

    check_foldable(params)
    extra = weight_columns(params)
    validate_ratings(ratings)
    check_weights(ratings, params)
    policy = "mean" if params.duplicates == "last" else params.duplicates
    ratings = resolve_duplicates(
        ratings.select("user", "item", "rating", *[weight_alias(c) for c in extra]), policy
    )
    for column, expected in (("user", data["user_id_type"]), ("item", data["item_id_type"])):
        actual = ratings.schema[column].dataType.simpleString()
        if actual != expected:
            raise InputError(
                f"{column} ids in {source} are {actual} but the model's are {expected}"
            )
    by_users = for_side == "users"
    row, other = ("user", "item") if by_users else ("item", "user")
    weights = params.user_weights()
    weights = weights if by_users else weights.swapped()
    # The training targets and confidences (implicit feedback, a weight column).
    entries = entry_weights(ratings, params)
    confidence = ["confidence"] if "confidence" in entries.columns else []
    new = entries.select(
        F.col(row).alias("row"), F.col(other).alias("other"), "rating", *confidence
    ).cache()
    num_fixed = data.get("num_items" if by_users else "num_users")
    factors = project(new, fixed_factors, params.rank, weights, num_fixed=num_fixed)
    return factors, new
