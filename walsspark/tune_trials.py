"""The trials of ``walsspark tune`` on Spark: the data they share, and one trial.

:meth:`TrialRunner.prepare` reads nothing itself: it validates the ratings, merges
repeated pairs and splits them once, as :func:`walsspark.training.train_model` does.
:meth:`TrialRunner.layout` lays the training split out once per confidence form, with
confidences for alpha = 1 (alpha multiplies every confidence, so a trial's alpha is
:func:`walsspark.train.fit`'s ``confidence_scale``: exact) and the training frequencies
that any popularity exponent of the unobserved weights reads. A search that varies the
confidence form (linear, log) therefore holds two layouts. :meth:`TrialRunner.evaluate`
trains one candidate on it and scores the validation split: the RMSE from the sweeps
(held-out pairs are scored in the item half-sweeps) and, for a ranking metric, the top-K
lists of every user with training items excluded (:mod:`walsspark.recommend`,
:func:`walsspark.evaluate.ranking_metrics`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from walsspark.errors import InputError
from walsspark.params import WALSParams
from walsspark.tuning import Metric, Validation

log = logging.getLogger("walsspark")


class TrialRunner:
    """The data every trial shares, and the training and scoring of one trial."""

    def __init__(
        self,
        spark,
        base: WALSParams,
        validation: Validation,
        metric: Metric,
        min_rating: float | None = None,
    ) -> None:
        self.spark, self.base, self.split, self.metric = spark, base, validation, metric
        self.min_rating = min_rating
        # Alpha multiplies every confidence: implicit feedback without a weight column.
        self.scales_confidence = base.implicit_prefs and not base.weight_col
        self.cached: list = []
        self.layouts: dict[str | None, tuple] = {}

    def prepare(self, ratings) -> dict[str, int]:
        """Validate, merge repeated pairs, split once (as training does); cache both sides
        and the relevant validation pairs. Returns their counts."""
        from pyspark.sql import functions as F

        from walsspark.duplicates import resolve_duplicates
        from walsspark.ratings_check import validate_ratings
        from walsspark.ratings_read import RAW_SOURCE_ATTR, weight_alias
        from walsspark.splits import split_ratings
        from walsspark.weighting import check_weights, weight_columns

        base, split = self.base, self.split
        input_cache = None if RAW_SOURCE_ATTR in vars(ratings) else ratings.cache()
        self.cached += [input_cache] if input_cache is not None else []
        validate_ratings(ratings)
        check_weights(ratings, base)
        ratings = resolve_duplicates(ratings, base.duplicates)
        keep = ["timestamp"] if split.method == "time" and "timestamp" in ratings.columns else []
        extra = [weight_alias(c) for c in weight_columns(base)]
        ratings = ratings.select("user", "item", "rating", *keep, *extra).cache()
        train, validation = split_ratings(ratings, split.method, split.fraction, split.k, base.seed)
        self.train, self.validation = train.cache(), validation.cache()
        self.cached += [ratings, self.train, self.validation]
        counts = {
            "train_ratings": self.train.count(),
            "validation_ratings": self.validation.count(),
        }
        if not counts["train_ratings"]:
            raise InputError("no ratings left for training after the validation split")
        if not counts["validation_ratings"]:
            raise InputError(f"the {split.describe()} validation split holds out no ratings")
        if input_cache is not None:
            input_cache.unpersist()
        relevant = self.validation
        if self.min_rating is not None:
            relevant = relevant.filter(F.col("rating") >= F.lit(self.min_rating))
        elif base.implicit_prefs:
            relevant = relevant.filter(F.col("rating") > 0)
        users, items = self.train.select("user").distinct(), self.train.select("item").distinct()
        self.relevant = (
            relevant.join(users, "user", "left_semi")
            .join(items, "item", "left_semi")
            .select("user", "item")
            .cache()
        )
        self.cached.append(self.relevant)
        counts["relevant_pairs"] = self.relevant.count()
        if self.metric.k is not None and not counts["relevant_pairs"]:
            raise InputError(
                "no relevant validation pair has a user and an item seen in training: "
                f"{self.metric.key} cannot be computed"
            )
        log.info(
            "validation split %s: %d training ratings, %d held out (%d relevant pairs)",
            split.describe(), counts["train_ratings"], counts["validation_ratings"],
            counts["relevant_pairs"],
        )  # fmt: skip
        return counts

    def layout(self, form: str | None) -> tuple:
        """``(entries, holdout, (users, items))`` for a confidence form, laid out once."""
        from walsspark.train import default_num_blocks, lay_out_ratings
        from walsspark.weighting import entry_weights

        if form in self.layouts:
            return self.layouts[form]
        start = time.perf_counter()
        params = replace(self.base, alpha=1.0, confidence=form or self.base.confidence)
        entries = entry_weights(self.train, params)
        holdout = entry_weights(self.validation, params, reference=self.train).cache()
        self.cached.append(holdout)
        if params.per_entry_weights:
            entries = entries.cache()
            self.cached.append(entries)
        num_ratings = entries.count()
        blocks = [
            getattr(params, f"num_{side}_blocks") or default_num_blocks(self.spark, num_ratings)
            for side in ("user", "item")
        ]
        sides = lay_out_ratings(entries, params, holdout, *blocks, with_frequencies=True)
        self.layouts[form] = (entries, holdout, sides)
        log.info(
            "laid out %d ratings%s in %d user blocks and %d item blocks (%.1f s)",
            num_ratings, f" ({form} confidence)" if form else "", *blocks,
            time.perf_counter() - start,
        )  # fmt: skip
        return self.layouts[form]

    def evaluate(self, candidate: dict[str, Any], sweeps: int) -> dict[str, float]:
        """Train ``candidate`` for ``sweeps`` on the shared layout; its validation metrics."""
        from walsspark.evaluate import ranking_metrics
        from walsspark.recommend import recommend_from_blocks
        from walsspark.train import fit

        params = replace(self.base, **candidate, sweeps=sweeps)
        scales = self.scales_confidence
        entries, holdout, sides = self.layout(params.confidence if scales else None)
        trained = fit(
            self.spark, entries, params, holdout, layout=sides,
            confidence_scale=params.alpha if scales else 1.0,
        )  # fmt: skip
        # The layout is shared: nothing of it is released here (the half-sweep outputs are
        # local checkpoints, which Spark's cleaner drops once they are unreferenced).
        metrics = {"rmse": trained.history[-1].metrics["rmse"]}
        k = self.metric.k
        if k is not None:
            num_items = sides[1].num_ids()
            lists = recommend_from_blocks(
                trained.factor_blocks("user"), trained.factor_blocks("item"), k, params.rank,
                num_candidates=num_items,
            )  # fmt: skip
            ranking = ranking_metrics(lists, self.relevant, k, num_items)
            metrics.update({name: v for name, v in ranking.items() if name != "users"})
        return metrics

    def release(self) -> None:
        """Free every cached frame and layout."""
        for _, _, sides in self.layouts.values():
            for side in sides:
                side.release()
        for frame in self.cached:
            frame.unpersist()


@contextmanager
def quiet_sweeps() -> Iterator[None]:
    """While trials run: training's per-sweep lines only with -v; a warning it repeats for
    every trial once."""
    import walsspark.train

    seen: set[str] = set()

    def keep(record: logging.LogRecord) -> bool:
        if record.pathname != walsspark.train.__file__:
            return True
        if record.levelno < logging.WARNING:
            return log.isEnabledFor(logging.DEBUG)
        message = record.getMessage()
        fresh = message not in seen
        seen.add(message)
        return fresh

    log.addFilter(keep)
    try:
        yield
    finally:
        log.removeFilter(keep)
