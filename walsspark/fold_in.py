"""The fold-in flow every front door shares: new ratings in, factors for their rows out.

``walsspark project`` (:mod:`walsspark.commands.project`) and
:meth:`walsspark.ml.WALSModel.projectUsers` / ``projectItems`` both call
:func:`fold_in`, which validates and merges the new ratings as training did, derives their
targets and confidences with the model's parameters and solves the new rows against the
model's fixed side (:func:`walsspark.project.project`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
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


def id_frequencies(blocks: DataFrame) -> DataFrame:
    """``id``, ``count``: every id of a side's factor blocks and its training frequency
    (the length of its row in the block's CSR)."""
    id_type = blocks.schema["ids"].dataType.elementType.simpleString()

    def explode(batches):
        for batch in batches:
            for index in range(batch.num_rows):
                ids = batch.column("ids")[index].values
                indptr = np.frombuffer(batch.column("indptr")[index].as_py(), dtype="<i8")
                yield pa.RecordBatch.from_pydict(
                    {"id": ids, "count": pa.array(np.diff(indptr), pa.int64())}
                )

    return blocks.select("ids", "indptr").mapInArrow(explode, f"id {id_type}, count long")


def fold_in(
    ratings: DataFrame,
    fixed_factors: DataFrame,
    params: WALSParams,
    data: dict,
    for_side: str,
    source: str,
    fixed_blocks: DataFrame | None = None,
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
    fixed_blocks : DataFrame, optional
        The model's factor blocks of the fixed side (:func:`walsspark.block_tables.factor_blocks`):
        their CSRs give the fixed ids' training frequencies, which models with
        popularity-scaled unobserved weights need.

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
        Bad ratings or weights, ids of another type than the model's, a model with
        per-id weights, or one with popularity-scaled unobserved weights saved without its
        factor blocks.
    """
    from walsspark.duplicates import resolve_duplicates
    from walsspark.project import project
    from walsspark.ratings_check import validate_ratings
    from walsspark.ratings_read import weight_alias
    from walsspark.weighting import check_weights, entry_weights, weight_columns

    check_foldable(params)
    popularity = any(params.unobserved_exponents)
    if popularity and fixed_blocks is None:
        raise InputError(
            "fold-in of a model with popularity-scaled unobserved weights needs the training "
            "frequencies of its factor blocks (user_blocks/, item_blocks/), which this model "
            "does not have"
        )
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
    norms = tuple(data.get("unobserved_norms", (1.0, 1.0)))
    weights = params.user_weights(norms)
    weights = weights if by_users else weights.swapped()
    # The training targets and confidences (implicit feedback, a weight column).
    entries = entry_weights(ratings, params)
    confidence = ["confidence"] if "confidence" in entries.columns else []
    new = entries.select(
        F.col(row).alias("row"), F.col(other).alias("other"), "rating", *confidence
    )
    if popularity:
        # The fixed ids' training frequencies: per entry (t_j of the observed correction)
        # and per fixed id (the Gramian sum_j t_j v_j v_j^T).
        counts = id_frequencies(fixed_blocks)
        fixed_factors = fixed_factors.join(counts, "id").select("id", "features", "count")
        new = new.join(
            counts.select(F.col("id").alias("other"), F.col("count").alias("other_count")),
            "other",
            "left",
        ).fillna(0, subset=["other_count"])
    new = new.cache()
    num_fixed = data.get("num_items" if by_users else "num_users")
    factors = project(new, fixed_factors, params.rank, weights, num_fixed=num_fixed)
    return factors, new
