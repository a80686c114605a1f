"""The training flow that every front door shares: ratings in, a trained model out.

``walsspark train`` (:mod:`walsspark.commands.train`) and :class:`walsspark.ml.WALS` both
call :func:`train_model`, as MLlib's ``ALS.fit`` and its command-line examples share
``ALS.train``. The flow, one pass over the data each where it can:

1. validate the ratings (:func:`walsspark.ratings_check.validate_ratings`) and the weight
   columns or confidences the parameters read (:func:`walsspark.weighting.check_weights`);
2. merge repeated (user, item) pairs (:func:`walsspark.duplicates.resolve_duplicates`);
3. hold ratings out when the parameters ask for it (:func:`walsspark.splits.split_ratings`);
4. derive targets and per-entry confidences (:func:`walsspark.weighting.entry_weights`);
5. train (:func:`walsspark.train.fit`), the holdout scored inside every sweep;
6. describe the result: the metadata a saved model carries (parameters, data counts and id
   types, per-sweep history, evaluation).

What the callers do around it is theirs: the command reads files and writes the model
directory and recommendation tables; the estimator renames a DataFrame's columns and keeps
the result in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from walsspark.errors import InputError
from walsspark.params import WALSParams
from walsspark.sweep_checkpoints import SweepCheckpoints
from walsspark.train import TrainedFactors


@dataclass
class TrainedModel:
    """What :func:`train_model` leaves: factors on Spark and the run's metadata.

    Attributes
    ----------
    trained : TrainedFactors
        The fit's factor blocks, layouts and history.
    factor_blocks : dict
        ``{"users": DataFrame, "items": DataFrame}``: factors with the training pairs, one
        row per block (:data:`walsspark.block_tables.FACTOR_BLOCK_COLUMNS`), cached. They are what a
        model saves next to its factor tables, and what recommendations are scored from
        with the training pairs excluded.
    metadata : dict
        ``params``, ``data`` (the source description given, the counts, id types and block
        counts), ``history``, ``sweeps_run``, ``fit_seconds`` and ``evaluation`` (the last
        sweep's holdout metrics, or None).
    """

    trained: TrainedFactors
    factor_blocks: dict[str, DataFrame]
    metadata: dict[str, Any]
    cached: list[DataFrame] = field(default_factory=list)

    def user_factors(self) -> DataFrame:
        """``id``, ``features`` (array<float>) per user."""
        return self.trained.user_factors()

    def item_factors(self) -> DataFrame:
        """``id``, ``features`` (array<float>) per item."""
        return self.trained.item_factors()

    def release_inputs(self) -> None:
        """Free the ratings training cached on the way (merged, split, weighted)."""
        for frame in self.cached:
            frame.unpersist()

    def release(self) -> None:
        """Free everything training cached (also rating blocks and factor blocks)."""
        self.release_inputs()
        for frame in self.factor_blocks.values():
            frame.unpersist()
        self.trained.release()


def train_model(
    spark: SparkSession,
    ratings: DataFrame,
    params: WALSParams,
    source: dict[str, Any] | None = None,
    checkpoints: SweepCheckpoints | None = None,
) -> TrainedModel:
    """Validate, deduplicate, split, weight and train; describe the result.

    Parameters
    ----------
    spark : SparkSession
        Classic or Spark Connect.
    ratings : DataFrame
        The internal layout of :mod:`walsspark.ratings_read`: ``user``, ``item``,
        ``rating``, optionally ``timestamp`` and the weight columns of
        :func:`walsspark.weighting.weight_columns` (``_w_<name>``).
    params : WALSParams
        Validated or not (validated here).
    source : dict, optional
        Where the ratings came from (``input``, ``format``, column names), recorded first
        in ``metadata["data"]``.
    checkpoints : SweepCheckpoints, optional
        Where to keep sweep checkpoints and resume from (:func:`walsspark.train.fit`).

    Returns
    -------
    TrainedModel

    Raises
    ------
    InputError
        Bad ratings or weights (one line naming the first problem), or nothing left to
        train on after the holdout split.
    """
    cached: list[DataFrame] = []
    try:
        return _train(spark, ratings, params, source or {}, cached, checkpoints)
    except Exception:
        # Bad input found half-way: leave no cached data behind.
        for frame in cached:
            frame.unpersist()
        raise


def _train(
    spark: SparkSession,
    ratings: DataFrame,
    params: WALSParams,
    source: dict[str, Any],
    cached: list[DataFrame],
    checkpoints: SweepCheckpoints | None = None,
) -> TrainedModel:
    """:func:`train_model`'s steps; every DataFrame it caches goes into ``cached``."""
    from walsspark.duplicates import resolve_duplicates
    from walsspark.ratings_check import validate_ratings
    from walsspark.ratings_read import RAW_SOURCE_ATTR, weight_alias
    from walsspark.splits import split_ratings
    from walsspark.train import fit
    from walsspark.weighting import check_weights, entry_weights, weight_columns

    params.validate()
    extra = weight_columns(params)
    # Read once: the validation pass fills a cache that the merging of duplicates then
    # reads (ML-1M Parquet: the second read and parse cost about a second). Not when the
    # ratings are text to parse, which validation reads raw to name non-numeric ones.
    read_once = RAW_SOURCE_ATTR not in vars(ratings)
    input_cache = ratings.cache() if read_once else None
    if input_cache is not None:
        cached.append(input_cache)
    validate_ratings(ratings)
    check_weights(ratings, params)
    ratings = resolve_duplicates(ratings, params.duplicates)
    keep = ["timestamp"] if params.split == "time" and "timestamp" in ratings.columns else []
    ratings = ratings.select(
        "user", "item", "rating", *keep, *[weight_alias(c) for c in extra]
    ).cache()
    train, holdout = split_ratings(
        ratings, params.split, params.holdout_fraction, params.holdout_k, params.seed
    )
    train = train.cache()
    cached += [ratings, train]
    if train.limit(1).count() == 0:
        raise InputError("no ratings left for training after the holdout split")
    if input_cache is not None:
        # The merged ratings are cached or in shuffle files from here on.
        input_cache.unpersist()

    # Targets and per-entry confidences (implicit feedback, weight schemes); per-id
    # weights come from the training split, for the holdout too.
    entries = entry_weights(train, params)
    holdout = entry_weights(holdout, params, reference=train).cache()
    cached.append(holdout)
    if params.per_entry_weights:
        entries = entries.cache()
        cached.append(entries)
    trained = fit(
        spark,
        entries,
        params,
        holdout if params.has_holdout else None,
        checkpoints,
    )
    # The factor blocks (factors with the training pairs, per block) are saved with the
    # model and are what recommendations are scored from.
    factor_blocks = {
        "users": trained.factor_blocks("user").cache(),
        "items": trained.factor_blocks("item").cache(),
    }
    return TrainedModel(trained, factor_blocks, describe(trained, source), cached)


def describe(trained: TrainedFactors, source: dict[str, Any]) -> dict[str, Any]:
    """The metadata of a trained model (everything but the format tags the writer adds)."""
    params = trained.params
    # The last sweep's holdout metrics are the model's evaluation.
    evaluation = trained.history[-1].metrics if params.has_holdout else None
    return {
        "params": params.to_dict(),
        "data": {
            **source,
            "user_id_type": trained.users.id_type,
            "item_id_type": trained.items.id_type,
            "num_train_ratings": trained.num_ratings,
            "num_users": trained.users.num_ids(),
            "num_items": trained.items.num_ids(),
            "num_user_blocks": trained.users.num_blocks,
            "num_item_blocks": trained.items.num_blocks,
            # What fold-in needs to weigh new rows as training did (popularity-scaled
            # unobserved weights): the users' and items' mean(n ** e).
            **(
                {"unobserved_norms": list(trained.unobserved_norms)}
                if any(params.unobserved_exponents)
                else {}
            ),
        },
        "history": [
            {
                "sweep": r.sweep,
                "loss": r.loss,
                "seconds": round(r.seconds, 3),
                **({"holdout": _sweep_metrics(r.metrics)} if r.metrics is not None else {}),
            }
            for r in trained.history
        ],
        "sweeps_run": len(trained.history),
        "fit_seconds": round(trained.fit_seconds, 3),
        "evaluation": finite_or_none(evaluation),
    }


def _sweep_metrics(metrics: dict) -> dict | None:
    return finite_or_none({k: metrics[k] for k in ("rmse", "mae", "rwse", "loss")})


def finite_or_none(metrics: dict | None) -> dict | None:
    """``metrics`` with NaN and infinities as None (JSON has neither)."""
    if metrics is None:
        return None
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in metrics.items()
    }
