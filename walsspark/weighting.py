"""Targets and per-entry weights of the objective, as Spark columns (DESIGN.md section 1).

An observed entry (i, j) with rating r has the target ``a_ij`` and the weight
``W_ij = w0 + R_i C_j c_ij``:

- ``a_ij = r`` (explicit) or ``1 if r > 0 else 0`` (``implicit_prefs``);
- ``c_ij``, the entry confidence: the ``weight_col`` value when given; else, with
  ``implicit_prefs``, ``alpha * r`` (``confidence="linear"``, Hu, Koren and Volinsky, as
  MLlib) or ``alpha * log(1 + r / epsilon)`` (``"log"``); else 1;
- ``R_i`` / ``C_j``, row and column weights: a scalar (kept in
  :class:`walsspark.solver.ObjectiveWeights`), or per id: ``linear:F`` gives ``F / n``,
  ``power:E`` gives ``n ** -E`` with ``n`` the id's number of training ratings (the WALS
  course weighted items by popularity this way), ``col:NAME`` the mean of the input column
  NAME over the id's rows.

:func:`entry_weights` turns ratings into ``user, item, rating`` (the target) plus, when
anything varies by entry, ``confidence`` = the per-id weights times ``c_ij``; the blocks
carry it to :func:`walsspark.solver.solve_block`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from walsspark.errors import InputError
from walsspark.params import WALSParams, parse_weight_scheme
from walsspark.ratings_read import weight_alias


def weight_columns(params: WALSParams) -> tuple[str, ...]:
    """The input columns the weights read (``weight_col`` and ``col:NAME`` schemes).

    The reader keeps them as :func:`walsspark.ratings_read.weight_alias` (``_w_<name>``).
    """
    names = [params.weight_col] if params.weight_col else []
    for name in ("row_weights", "col_weights"):
        kind, value = parse_weight_scheme(name, getattr(params, name))
        if kind == "col" and value not in names:
            names.append(str(value))
    return tuple(names)


def _entry_confidence(params: WALSParams) -> Column | None:
    rating = F.col("rating")
    if params.weight_col:
        return F.col(weight_alias(params.weight_col))
    if params.implicit_prefs:
        if params.confidence == "log":
            return F.lit(float(params.alpha)) * F.log1p(rating / F.lit(float(params.epsilon)))
        return F.lit(float(params.alpha)) * rating
    return None


def _id_weights(
    side: str, scheme: tuple[str, float | str], reference: DataFrame
) -> DataFrame | None:
    """``side``, ``w``: the per-id weights of a per-id scheme (None for a scalar)."""
    kind, value = scheme
    if kind == "scalar":
        return None
    if kind == "col":
        column = F.col(weight_alias(str(value)))
        return reference.groupBy(side).agg(F.avg(column).alias(f"_{side}_weight"))
    counts = reference.groupBy(side).agg(F.count(F.lit(1)).cast("double").alias("n"))
    weight = F.lit(float(value)) / F.col("n") if kind == "linear" else F.pow("n", -float(value))
    return counts.select(side, weight.alias(f"_{side}_weight"))


def entry_weights(
    ratings: DataFrame, params: WALSParams, reference: DataFrame | None = None
) -> DataFrame:
    """Targets and, when they vary by entry, confidences of the ratings.

    Parameters
    ----------
    ratings : DataFrame
        ``user``, ``item``, ``rating`` and the columns of :func:`weight_columns` as the
        reader names them (``_w_<name>``).
    params : WALSParams
    reference : DataFrame, optional
        The ratings the per-id weights are computed from (the training split, so that
        held-out entries are weighted as training weighs their ids); ``ratings`` itself
        by default.

    Returns
    -------
    DataFrame
        ``user``, ``item``, ``rating`` (the target a_ij) and, when
        ``params.per_entry_weights``, ``confidence`` (R_i C_j c_ij, per-id parts only; null
        for an id absent from ``reference``).
    """
    reference = ratings if reference is None else reference
    target = F.col("rating")
    if params.implicit_prefs:
        target = F.when(F.col("rating") > 0, F.lit(1.0)).otherwise(F.lit(0.0))
    if not params.per_entry_weights:
        return ratings.select("user", "item", target.alias("rating"))
    confidence = _entry_confidence(params)
    frame = ratings
    factors = [] if confidence is None else [confidence]
    for side, name in (("user", "row_weights"), ("item", "col_weights")):
        weights = _id_weights(side, parse_weight_scheme(name, getattr(params, name)), reference)
        if weights is not None:
            frame = frame.join(weights, side, "left")
            factors.append(F.col(f"_{side}_weight"))
    product = F.lit(1.0)
    for factor in factors:
        product = product * factor
    return frame.select("user", "item", target.alias("rating"), product.alias("confidence"))


def check_weights(ratings: DataFrame, params: WALSParams) -> None:
    """Raise :class:`InputError` for a null weight or a confidence that is not > 0.

    ``ratings`` are the input ratings (before :func:`entry_weights`); one aggregation job.
    """
    columns = weight_columns(params)
    confidence = _entry_confidence(params)
    if not columns and confidence is None:
        return
    checks = {}
    for name in columns:
        column = F.col(weight_alias(name))
        checks[f"null {name}"] = column.isNull()
        checks[f"bad {name}"] = ~(column > 0) | F.isnan(column)
    if confidence is not None and not params.weight_col:
        checks["confidence"] = ~(confidence > 0) | F.isnan(confidence)
    example = F.struct(
        "user", "item", "rating", *[F.col(weight_alias(c)).alias(c) for c in columns]
    )
    aggregates = []
    for index, condition in enumerate(checks.values()):
        aggregates.append(F.count_if(condition).alias(f"n{index}"))
        aggregates.append(F.min(F.when(condition, example)).alias(f"e{index}"))
    row = ratings.agg(*aggregates).collect()[0]
    for index, name in enumerate(checks):
        count = int(row[f"n{index}"])
        if not count:
            continue
        ex = row[f"e{index}"]
        where = f"e.g. user={ex['user']!r}, item={ex['item']!r}, rating={ex['rating']}"
        if name.startswith("null "):
            raise InputError(f"weight column {name[5:]!r} has {count} null values ({where})")
        if name.startswith("bad "):
            column = name[4:]
            raise InputError(
                f"weight column {column!r} has {count} values that are not > 0 "
                f"({where}, {column}={ex[column]})"
            )
        formula = (
            f"alpha * log(1 + r / {params.epsilon})" if params.confidence == "log" else "alpha * r"
        )
        raise InputError(
            f"implicit confidence {formula} must be > 0, but {count} ratings give "
            f"<= 0 ({where}); implicit feedback needs ratings > 0"
        )
