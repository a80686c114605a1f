"""The search of ``walsspark tune``: its space, candidates, halving schedule and trial loop.

Everything here is plain Python (no Spark): :func:`run_search` calls an ``evaluate``
function per trial, which :mod:`walsspark.commands.tune` backs with training on a shared
layout, and tests back with a stub.

- The space maps a parameter (a :class:`walsspark.params.WALSParams` field of
  :data:`SEARCHABLE`) to a :class:`Dimension`: a list of values, or a range sampled
  uniformly or log-uniformly. It comes from a TOML file (:func:`load_grid`) or from
  :func:`default_space`.
- Candidates: every combination (:func:`grid_candidates`), or ``n`` seeded draws
  (:func:`random_candidates`; all combinations when a space of lists has no more).
- Successive halving (:func:`halving_schedule`): every candidate at a few sweeps, the best
  1/eta of them at eta times as many, and so on up to the full sweeps. A continued
  candidate is trained again from the start: sweeps are deterministic for a seed, so its
  first sweeps are the ones it already ran.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from walsspark.errors import InputError
from walsspark.options import read_toml
from walsspark.params import CONFIDENCES, SPLIT_METHODS, WALSParams, unobserved_exponent
from walsspark.ranking import METRICS

# The parameters a search may vary (every other option is fixed for all trials).
NUMERIC = ("regularization", "reg_exponent", "reg_offset", "alpha", "unobserved_weight")
SEARCHABLE = (*NUMERIC, "unobserved_row_weights", "unobserved_col_weights", "confidence")
# Parameters that only act through the implicit confidence alpha r or alpha log(1 + r / eps).
IMPLICIT_ONLY = ("alpha", "confidence")
RANGE_KINDS = ("uniform", "log-uniform")


@dataclass(frozen=True)
class Dimension:
    """One parameter's values: a list (``values``) or a range ``low..high``."""

    values: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    @property
    def is_range(self) -> bool:
        return not self.values

    def sample(self, rng: random.Random) -> Any:
        """One draw; range draws are rounded to 3 significant digits."""
        if not self.is_range:
            return rng.choice(self.values)
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return min(self.high, max(self.low, float(f"{value:.3g}")))

    def describe(self) -> str:
        if self.is_range:
            return f"{'log-uniform' if self.log else 'uniform'} {self.low:g}..{self.high:g}"
        return "{" + ", ".join(_shown(v) for v in self.values) + "}"


def default_space(implicit: bool, weight_col: bool) -> dict[str, Dimension]:
    """The space searched when no grid file is given (before removing fixed options).

    Implicit feedback: lambda log-uniform 0.03..3 with nu in {0.5, 1} and the offset of
    lambda (n_i + o) ** nu in {0, 30, 100, 300}, alpha log-uniform 0.3..30, the items'
    popularity exponent of the unobserved weights in {uniform, 0.1}, with w0 fixed at 1
    (MLlib's): scaling w0, alpha and lambda together leaves the solution unchanged, so only
    alpha / w0 and lambda / w0 matter. The offset (Rendle et al. 2022) gained 0.7% (ML-1M)
    and 7.0% (ML-100K) validation NDCG@10 over MLlib's tuned form
    (``benchmarks/bench_objective_forms.py``); the measured searches' winners had uniform
    unobserved weights, so the exponent keeps one small value. The confidence form is the
    input's (a grid file may vary it). These ranges come from measured searches
    (README, "Implicit-feedback quality"): on the MovieLens positives at rank 64 a first,
    wider default space (lambda 1e-3..10, nu in {0, 0.5, 1}, alpha 0.1..50, exponents up to
    0.75, both forms) spent 20 random trials mostly where every trial scored badly (nu = 0,
    exponents >= 0.5 with w0 = 1, lambda below 0.03), and its best was 7% below MLlib's
    tuned grid on ML-1M.

    Explicit ratings (or a ``weight_col``): lambda log-uniform 1e-3..10 with nu in {0, 0.5,
    1} (with nu = 0 lambda competes with whole Gramians, so the range reaches 10), the
    exponent in {uniform, 0.25, 0.5, 0.75} and w0 in {0, 0.001, 0.01, 0.1, 1}.
    """
    if implicit and not weight_col:
        return {
            "regularization": Dimension(low=0.03, high=3.0, log=True),
            "reg_exponent": Dimension(values=(0.5, 1.0)),
            "reg_offset": Dimension(values=(0.0, 30.0, 100.0, 300.0)),
            "unobserved_col_weights": Dimension(values=("uniform", "power:0.1")),
            "alpha": Dimension(low=0.3, high=30.0, log=True),
        }
    return {
        "regularization": Dimension(low=1e-3, high=10.0, log=True),
        "reg_exponent": Dimension(values=(0.0, 0.5, 1.0)),
        "unobserved_col_weights": Dimension(
            values=("uniform", "power:0.25", "power:0.5", "power:0.75")
        ),
        "unobserved_weight": Dimension(values=(0.0, 0.001, 0.01, 0.1, 1.0)),
    }


def load_grid(path: str) -> dict[str, Dimension]:
    """The space of a TOML grid file: ``name = [values]``, ``name = value`` or
    ``name = {uniform = [low, high]}`` / ``{log-uniform = [low, high]}``.

    Raises
    ------
    InputError
        One line naming the file and the first problem.
    """
    return parse_space(read_toml(path, "grid file"), f"grid file {path}")


def parse_space(raw: dict, source: str) -> dict[str, Dimension]:
    """The space of a parsed TOML table (see :func:`load_grid`); ``source`` names it."""
    if not raw:
        raise InputError(f"{source} names no parameter to search")
    space: dict[str, Dimension] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in SEARCHABLE:
            raise InputError(
                f"{source}: unknown parameter '{key}' (searchable: {', '.join(SEARCHABLE)})"
            )
        if name in space:
            raise InputError(f"{source}: parameter '{key}' given twice")
        if isinstance(value, dict):
            space[name] = _parse_range(name, key, value, source)
            continue
        values = value if isinstance(value, list) else [value]
        if not values:
            raise InputError(f"{source}: '{key}' has an empty list of values")
        checked = [_checked_value(name, v, source) for v in values]
        space[name] = Dimension(values=tuple(dict.fromkeys(checked)))
    return space


def _parse_range(name: str, key: str, value: dict, source: str) -> Dimension:
    form = "{uniform = [low, high]} or {log-uniform = [low, high]}"
    if name not in NUMERIC:
        raise InputError(f"{source}: '{key}' takes a list of values, not a range")
    if len(value) != 1 or next(iter(value)) not in RANGE_KINDS:
        raise InputError(f"{source}: '{key}' must be a list of values, {form}, got {value!r}")
    kind, bounds = next(iter(value.items()))
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise InputError(f"{source}: '{key}' must be {form}, got {value!r}")
    low, high = (_checked_value(name, bound, source) for bound in bounds)
    if not low < high:
        raise InputError(f"{source}: '{key}' range needs low < high, got {low:g}..{high:g}")
    if kind == "log-uniform" and low <= 0:
        raise InputError(f"{source}: '{key}' log-uniform range needs low > 0, got {low:g}")
    return Dimension(low=low, high=high, log=kind == "log-uniform")


def _checked_value(name: str, value: Any, source: str) -> Any:
    """``value`` as the parameter takes it (numbers as floats), or an :class:`InputError`."""
    try:
        if name in NUMERIC:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{name} must be a number, got {value!r}")
            value = float(value)
        elif name == "confidence" and value not in CONFIDENCES:
            raise InputError(f"confidence must be one of {', '.join(CONFIDENCES)}, got {value!r}")
        elif name != "confidence":
            unobserved_exponent(name, value)
        WALSParams(**{name: value}).validate()
    except InputError as error:
        raise InputError(f"{source}: {error}") from None
    return value


def grid_candidates(space: dict[str, Dimension]) -> list[dict[str, Any]]:
    """Every combination of the values, in the order of the lists (the last varies fastest)."""
    ranges = [name for name, dim in space.items() if dim.is_range]
    if ranges:
        raise InputError(
            f"a grid search needs a list of values for every parameter, but {ranges[0]} is a "
            "range: give a list, or use --search random or halving"
        )
    names = list(space)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(space[n].values for n in names))
    ]


def random_candidates(space: dict[str, Dimension], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` seeded draws: distinct combinations when every dimension is a list (all of
    them, shuffled, when there are no more than ``n``), else independent draws."""
    rng = random.Random(seed)
    if any(dim.is_range for dim in space.values()):
        return [{name: dim.sample(rng) for name, dim in space.items()} for _ in range(n)]
    combos = grid_candidates(space)
    return [combos[i] for i in rng.sample(range(len(combos)), min(n, len(combos)))]


def halving_schedule(num_candidates: int, sweeps: int, eta: int = 3) -> list[tuple[int, int]]:
    """Stages of successive halving: ``(candidates, sweeps)`` each.

    ``r`` = the number of times both ``num_candidates`` and ``sweeps`` can be divided by
    ``eta``; stage i trains ``num_candidates // eta**i`` candidates (at least one) with
    ``round(sweeps / eta**(r - i))`` sweeps (at least one), the last ``sweeps``.

    Examples
    --------
    >>> halving_schedule(27, 10)
    [(27, 1), (9, 3), (3, 10)]
    >>> halving_schedule(2, 10)
    [(2, 10)]
    """
    if eta < 2:
        raise InputError(f"eta must be an integer >= 2, got {eta}")
    rungs = 0
    while eta ** (rungs + 1) <= min(num_candidates, sweeps):
        rungs += 1
    stages, count = [], num_candidates
    for i in range(rungs + 1):
        stages.append((count, max(1, round(sweeps / eta ** (rungs - i)))))
        count = max(1, count // eta)
    return stages


@dataclass(frozen=True)
class Metric:
    """What trials are ranked by: ``rmse`` (lower is better) or a ranking metric at K."""

    name: str
    k: int | None = None

    @property
    def key(self) -> str:
        return self.name if self.k is None else f"{self.name}@{self.k}"

    @property
    def higher_is_better(self) -> bool:
        return self.k is not None

    def sort_key(self, value: float | None) -> tuple[bool, float]:
        """Best first; a missing or NaN value last."""
        if value is None or math.isnan(value):
            return (True, 0.0)
        return (False, -value if self.higher_is_better else value)


def parse_metric(text: str) -> Metric:
    """``rmse`` or ``NAME@K`` with NAME one of :data:`walsspark.ranking.METRICS`."""
    if text == "rmse":
        return Metric("rmse")
    name, _, k = text.partition("@")
    if name in METRICS and k.isdigit() and int(k) >= 1:
        return Metric(name, int(k))
    names = ", ".join(f"{m}@K" for m in METRICS)
    raise InputError(f"metric must be rmse or one of {names} (e.g. ndcg@10), got {text!r}")


@dataclass(frozen=True)
class Validation:
    """The validation split: :func:`walsspark.splits.split_ratings`' method, fraction, k."""

    method: str
    fraction: float = 0.0
    k: int = 1

    def describe(self) -> str:
        value = self.k if self.method == "leave-k-out" else f"{self.fraction:g}"
        return f"{self.method}:{value}"


def parse_validation(text: str) -> Validation:
    """``METHOD:FRACTION`` (random, user-fraction, time) or ``leave-k-out:K``."""
    method, _, value = text.partition(":")
    if method not in SPLIT_METHODS or not value:
        forms = ", ".join(f"{m}:{'K' if m == 'leave-k-out' else 'F'}" for m in SPLIT_METHODS)
        raise InputError(
            f"validation must be one of {forms} (e.g. user-fraction:0.2), got {text!r}"
        )
    if method == "leave-k-out":
        if not value.isdigit() or int(value) < 1:
            raise InputError(f"leave-k-out validation needs an integer K >= 1, got {value!r}")
        return Validation(method, 0.0, int(value))
    try:
        fraction = float(value)
    except ValueError:
        fraction = math.nan
    if not 0.0 < fraction < 1.0:
        raise InputError(f"validation fraction must be in (0, 1), got {value!r}")
    return Validation(method, fraction)


@dataclass
class Trial:
    """One training run of a candidate, and what it scored."""

    number: int
    stage: int
    sweeps: int
    candidate: int
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def run_search(
    candidates: list[dict[str, Any]],
    stages: list[tuple[int, int]],
    evaluate: Callable[[dict[str, Any], int], dict[str, float]],
    metric: Metric,
    report: Callable[[Trial, Trial, int], None] | None = None,
) -> list[Trial]:
    """Train and score candidates stage by stage; the best ones go on to the next stage.

    Parameters
    ----------
    candidates : list of dict
        Parameter settings.
    stages : list of (int, int)
        ``(candidates, sweeps)`` per stage (:func:`halving_schedule`; one stage of every
        candidate at the full sweeps for grid and random search). Stage 1 takes the first
        candidates; each later stage the best of the stage before.
    evaluate : callable
        ``evaluate(params, sweeps)`` -> metrics, holding ``metric.key``.
    metric : Metric
    report : callable, optional
        Called after every trial with the trial, the best trial of its stage so far and
        the number of trials planned.

    Returns
    -------
    list of Trial
        In the order they ran; the best of the last stage is :func:`best_trial`.
    """
    planned = sum(count for count, _ in stages)
    trials: list[Trial] = []
    chosen = list(range(min(stages[0][0], len(candidates))))
    for stage, (_, sweeps) in enumerate(stages, start=1):
        ran = []
        for index in chosen:
            start = time.perf_counter()
            metrics = evaluate(candidates[index], sweeps)
            trial = Trial(len(trials) + 1, stage, sweeps, index, candidates[index], metrics)
            trial.seconds = time.perf_counter() - start
            trials.append(trial)
            ran.append(trial)
            if report is not None:
                report(trial, best_trial(ran, metric), planned)
        if stage < len(stages):
            keep = stages[stage][0]
            chosen = [t.candidate for t in sorted(ran, key=lambda t: _rank(t, metric))[:keep]]
    return trials


def _rank(trial: Trial, metric: Metric) -> tuple:
    return (*metric.sort_key(trial.metrics.get(metric.key)), trial.number)


def best_trial(trials: list[Trial], metric: Metric) -> Trial:
    """The best trial among those with the most sweeps (ties: the earliest)."""
    most = max(t.sweeps for t in trials)
    return min((t for t in trials if t.sweeps == most), key=lambda t: _rank(t, metric))


def describe_params(params: dict[str, Any]) -> str:
    return " ".join(f"{name}={_shown(value)}" for name, value in params.items())


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
