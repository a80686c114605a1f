"""`walsspark tune`: a hyperparameter search on one validation split, in one Spark session.

The ratings are read, validated, merged and split once; each confidence form the trials
use is laid out once (:func:`walsspark.train.lay_out_ratings`, with the training
frequencies any popularity exponent needs, and confidences for alpha = 1: a trial's alpha
is :func:`walsspark.train.fit`'s ``confidence_scale``). Every trial trains on that layout
and is scored on the validation split: the RMSE from the sweeps, ranking metrics from the
top-K lists (training items excluded). The search itself is :mod:`walsspark.tuning`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
from dataclasses import dataclass, replace
from typing import Any

from walsspark.commands.inputs import check_apart, check_exists, read_input
from walsspark.errors import InputError
from walsspark.options import SYNTHETIC_INPUT, TRAIN_DEFAULTS, TUNE_DEFAULTS, TUNE_TRAIN_OPTIONS
from walsspark.params import PRESETS, WALSParams, apply_preset
from walsspark.ranking import METRICS
from walsspark.session import SparkSetup
from walsspark.staging import staged
from walsspark.tune_trials import TrialRunner, quiet_sweeps
from walsspark.tuning import (
    IMPLICIT_ONLY,
    NUMERIC,
    SEARCHABLE,
    Dimension,
    Metric,
    Trial,
    Validation,
    best_trial,
    default_space,
    describe_params,
    grid_candidates,
    halving_schedule,
    load_grid,
    parse_metric,
    parse_validation,
    random_candidates,
    run_search,
)

log = logging.getLogger("walsspark")

# What a tune output directory holds: best.toml is written last.
OUTPUT_FILES = ("trials.parquet", "trials.csv", "best.toml")
# best.toml's keys (train options) besides the validation split's.
BEST_KEYS = (
    "input format user_col item_col rating_col timestamp_col id_type header duplicates "
    "implicit_prefs rank sweeps seed num_user_blocks num_item_blocks regularization "
    "reg_exponent reg_offset unobserved_weight row_weights col_weights unobserved_row_weights "
    "unobserved_col_weights alpha confidence epsilon weight_col solver cg_steps tol".split()
)


@dataclass
class TunePlan:
    """A checked search, made before Spark starts."""

    options: dict[str, Any]
    base: WALSParams
    space: dict[str, Dimension]
    search: str
    candidates: list[dict[str, Any]]
    stages: list[tuple[int, int]]
    metric: Metric
    validation: Validation

    @property
    def scales_confidence(self) -> bool:
        """Whether alpha multiplies every confidence (implicit, no weight column)."""
        return self.base.implicit_prefs and not self.base.weight_col


def resolve_tune_options(args: argparse.Namespace) -> TunePlan:
    """Defaults, then the command line; the search planned and checked."""
    internal = ("command", "verbose", "conf", "conf_before")
    given = {k: v for k, v in vars(args).items() if k not in internal}
    options = {**{k: TRAIN_DEFAULTS[k] for k in TUNE_TRAIN_OPTIONS}, **TUNE_DEFAULTS, **given}
    return plan_search(options, set(given))


def plan_search(options: dict[str, Any], given: set[str]) -> TunePlan:
    """Check the options, read the grid file and draw the candidates.

    Options in ``given`` (and those a preset sets) are fixed; the space is the grid
    file's, or :func:`walsspark.tuning.default_space` without the fixed parameters.

    Raises
    ------
    InputError
        One line naming the first problem.
    """
    if options["input"] is None:
        raise InputError("no input given: pass --input PATH (or --input synthetic)")
    if options["output"] is None:
        raise InputError("no output given: pass --output DIR")
    metric = parse_metric(options["metric"])
    validation = parse_validation(options["validation"])
    for name, least in (("trials", 1), ("eta", 2)):
        value = options[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InputError(f"{name} must be an integer >= {least}, got {value!r}")
    if options["min_rating"] is not None and not math.isfinite(options["min_rating"]):
        raise InputError(f"min rating must be a finite number, got {options['min_rating']}")
    if validation.method == "time" and not options["timestamp_col"]:
        if options["input"] != SYNTHETIC_INPUT:
            raise InputError("time validation needs a timestamp column (pass --timestamp-col NAME)")
    grid = load_grid(options["grid"]) if options["grid"] else None
    searched = set(grid or ())
    for name in sorted(searched & given):
        raise InputError(
            f"{name} is both fixed (--{name.replace('_', '-')}) and searched (grid file "
            f"{options['grid']}): drop one"
        )
    options = apply_preset(options, given | searched)
    fixed = given | set(PRESETS.get(options["preset"] or "", ()))
    implicit, weight_col = options["implicit_prefs"] is True, bool(options["weight_col"])
    if implicit and not weight_col and "unobserved_weight" not in fixed | searched:
        options["unobserved_weight"] = 1.0  # MLlib's: the default alpha and lambda ranges fit it
    if grid is None:
        grid = {k: v for k, v in default_space(implicit, weight_col).items() if k not in fixed}
        if not grid:
            raise InputError("nothing to search: the options fix every default parameter")
    for name in IMPLICIT_ONLY:
        if name in grid and not (implicit and not weight_col):
            raise InputError(
                f"{name} only acts on implicit confidences: searching it needs --implicit "
                "(and no --weight-col)"
            )
    base = WALSParams.from_dict({**options, "holdout_fraction": 0.0}).validate()
    search = options["search"] or (
        "random" if any(dim.is_range for dim in grid.values()) else "grid"
    )
    if search == "grid":
        if not options["grid"] and any(dim.is_range for dim in grid.values()):
            raise InputError("--search grid needs --grid FILE.toml (the default space has ranges)")
        if "trials" in given:
            raise InputError("--trials is for --search random or halving (a grid tries all)")
        candidates = grid_candidates(grid)
    else:
        candidates = random_candidates(grid, options["trials"], base.seed)
    for candidate in candidates:
        try:
            replace(base, **candidate).validate()
        except InputError as error:
            raise InputError(f"candidate {describe_params(candidate)}: {error}") from None
    if search == "halving":
        stages = halving_schedule(len(candidates), base.sweeps, options["eta"])
    else:
        stages = [(len(candidates), base.sweeps)]
    return TunePlan(options, base, grid, search, candidates, stages, metric, validation)


def run_tune(plan: TunePlan, setup: SparkSetup) -> dict[str, Any]:
    """Read and split the ratings, run the trials, write the output; return a summary."""
    from walsspark.weighting import weight_columns

    options = plan.options
    output = options["output"]

    def check_paths(storage) -> None:
        check_exists(storage, options["input"], "input")
        check_apart(storage, output, input=options["input"])
        check_output(storage, output, options["overwrite"])

    stages = ", ".join(f"{n} x {s} sweeps" for n, s in plan.stages)
    log.info(
        "%s search, %d trials (%s) by %s on a %s validation split; space: %s",
        plan.search, sum(n for n, _ in plan.stages), stages, plan.metric.key,
        plan.validation.describe(),
        "; ".join(f"{name} {dim.describe()}" for name, dim in plan.space.items()),
    )  # fmt: skip
    spark, storage = setup.start_checked(check_paths)
    ratings = read_input(spark, options, extra_cols=weight_columns(plan.base), storage=storage)
    runner = TrialRunner(spark, plan.base, plan.validation, plan.metric, options["min_rating"])
    try:
        counts = runner.prepare(ratings)
        # Every layout before the first trial, so that the trials' times are the trials'.
        forms = [c.get("confidence", plan.base.confidence) for c in plan.candidates]
        for form in dict.fromkeys(forms) if plan.scales_confidence else [None]:
            runner.layout(form)
        with quiet_sweeps():
            trials = run_search(
                plan.candidates, plan.stages, runner.evaluate, plan.metric, _reporter(plan.metric)
            )
    finally:
        runner.release()
    best = best_trial(trials, plan.metric)
    source = options["input"]
    if source != SYNTHETIC_INPUT:
        source = storage.describe(source)
    columns = trial_columns(plan)
    rows = [trial_row(plan, trial, columns) for trial in trials]
    text = best_toml(plan, best, source, len(trials))
    write_output(spark, storage, output, options["overwrite"], columns, rows, text)
    log.info("tuning results written to %s", storage.describe(output))
    return {
        "output": storage.describe(output),
        "search": plan.search,
        "trials": len(trials),
        "seconds": sum(t.seconds for t in trials),
        "metric": plan.metric.key,
        "best": {"trial": best.number, "value": best.metrics.get(plan.metric.key)},
        "best_params": best.params,
        **counts,
    }


def print_tune_summary(summary: dict[str, Any]) -> None:
    best = summary["best"]
    print(
        f"{summary['search']} search: {summary['trials']} trials in {summary['seconds']:.1f} s; "
        f"best {summary['metric']} {_shown(best['value'])} (trial {best['trial']}: "
        f"{describe_params(summary['best_params'])}); written to {summary['output']} "
        f"({', '.join(OUTPUT_FILES)})"
    )


def _reporter(metric: Metric):
    """The progress line of every trial: its parameters, its metric and the best so far."""

    def report(trial: Trial, best: Trial, planned: int) -> None:
        log.info(
            "trial %d/%d (stage %d, %d sweeps): %s: %s %s (best %s, trial %d) %.1f s",
            trial.number, planned, trial.stage, trial.sweeps, describe_params(trial.params),
            metric.key, _shown(trial.metrics.get(metric.key)),
            _shown(best.metrics.get(metric.key)), best.number, trial.seconds,
        )  # fmt: skip

    return report


def _shown(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


# -- output -------------------------------------------------------------------------------


def trial_columns(plan: TunePlan) -> list[tuple[str, str]]:
    """``(name, type)`` of the trials table: the trial, every searchable parameter (those
    of the implicit confidence with implicit feedback only), the metrics, seconds."""
    params = [n for n in SEARCHABLE if plan.scales_confidence or n not in IMPLICIT_ONLY]
    k = plan.metric.k
    metrics = ["rmse", *([f"{name}@{k}" for name in (*METRICS, "coverage")] if k else [])]
    return [
        *[(name, "int") for name in ("trial", "stage", "sweeps")],
        *[(name, "float" if name in NUMERIC else "str") for name in params],
        *[(name, "float") for name in (*metrics, "seconds")],
    ]


def trial_row(plan: TunePlan, trial: Trial, columns: list[tuple[str, str]]) -> dict[str, Any]:
    """One row of the trials table (NaN metrics as nulls)."""
    params = replace(plan.base, **trial.params)
    values = {
        "trial": trial.number,
        "stage": trial.stage,
        "sweeps": trial.sweeps,
        "seconds": round(trial.seconds, 3),
        **{name: getattr(params, name) for name in SEARCHABLE},
        **trial.metrics,
    }
    row = {}
    for name, kind in columns:
        value = values.get(name)
        if isinstance(value, float) and math.isnan(value):
            value = None
        row[name] = float(value) if kind == "float" and value is not None else value
    return row


def best_toml(plan: TunePlan, best: Trial, source: str, num_trials: int) -> str:
    """A config file of ``walsspark train`` for the best trial: the fixed options, its
    parameters and the validation split (so that train reproduces the trial)."""
    params = replace(plan.base, **best.params)
    known = set(WALSParams.__dataclass_fields__)
    values: dict[str, Any] = {}
    for key in BEST_KEYS:
        value = getattr(params, key) if key in known else plan.options[key]
        if key == "input":
            value = source
        if value is not None:
            values[key] = value
    split = plan.validation
    values.update(split=split.method, holdout_fraction=split.fraction, holdout_k=split.k)
    metric = plan.metric.key
    lines = [
        f"# walsspark tune: trial {best.number} of {num_trials} ({plan.search} search) is the "
        f"best by {metric} = {_shown(best.metrics.get(metric))} on the {split.describe()} "
        "validation split.",
        "# 'walsspark train --config best.toml' trains it on that split (its holdout "
        "evaluation is the validation);",
        '# with split = "random" and holdout_fraction = 0.0 it trains on every rating.',
        *[f"{key} = {_toml_value(value)}" for key, value in values.items()],
    ]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # A JSON string is a TOML basic string, once DEL is escaped too.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def check_output(storage, path: str, overwrite: bool) -> None:
    """Refuse an output that holds something, unless ``overwrite`` and it is a tune output.

    A tune output on the driver's disk holds the plain files of :data:`OUTPUT_FILES` (what
    ``train --config`` reads); elsewhere Spark writes each as a one-file directory.
    """
    local = storage.local(path)
    if local is not None and os.path.isdir(local) and os.listdir(local):
        if not overwrite:
            raise InputError(
                f"output directory is not empty: {path} (pass --overwrite to replace it)"
            )
        names = os.listdir(local)
        ours = all(
            name in OUTPUT_FILES and os.path.isfile(os.path.join(local, name)) for name in names
        )
        if not ours:
            raise InputError(
                f"refusing to overwrite {path}: it is not an output walsspark tune wrote"
            )
        return
    storage.check_output(path, overwrite)


def write_output(spark, storage, path, overwrite, columns, rows, toml_text) -> None:
    """Write the trials (Parquet and CSV) and best.toml, complete or not at all: staged and
    renamed into place on the driver's disk; elsewhere best.toml is written last."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    schema = pa.schema([(name, types[kind]) for name, kind in columns])
    table = pa.Table.from_pylist(rows, schema=schema)
    local = storage.local(path)
    if local is None:
        # Storage.write_output checks the output itself (check_output's only check there).
        frame = spark.createDataFrame(table).coalesce(1)
        storage.write_output(
            path,
            overwrite,
            [
                ("trials.parquet", lambda target, mode: frame.write.mode(mode).parquet(target)),
                (
                    "trials.csv",
                    lambda target, mode: frame.write.mode(mode).option("header", True).csv(target),
                ),
                ("best.toml", storage.text_writer(toml_text)),
            ],
        )
        return
    check_output(storage, path, overwrite)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([name for name, _ in columns])
    writer.writerows([["" if row[n] is None else row[n] for n, _ in columns] for row in rows])
    with staged(local) as staging:
        os.makedirs(staging)
        pq.write_table(table, os.path.join(staging, "trials.parquet"))
        for name, content in (("trials.csv", text.getvalue()), ("best.toml", toml_text)):
            with open(os.path.join(staging, name), "w", encoding="utf-8") as handle:
                handle.write(content)
