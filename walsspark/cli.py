"""The ``walsspark`` command line: parse and validate, then call the Spark layer.

Every problem with the user's input stops the run before training with one line on stderr,
``walsspark: error: <what is wrong>``, exit status 2, and nothing written.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from walsspark.commands.evaluate import print_evaluate_summary, run_evaluate
from walsspark.commands.project import print_project_summary, run_project
from walsspark.commands.recommend import print_recommend_summary, run_recommend
from walsspark.commands.split import print_split_summary, run_split
from walsspark.commands.train import print_train_summary, run_train
from walsspark.commands.tune import print_tune_summary, resolve_tune_options, run_tune
from walsspark.errors import InputError
from walsspark.options import (
    FORMATS,
    ID_TYPES,
    SEARCH_METHODS,
    STRING_OPTIONS,
    SYNTHETIC_INPUT,
    TRAIN_DEFAULTS,
    TUNE_DEFAULTS,
    read_toml,
)
from walsspark.params import (
    CONFIDENCES,
    DUPLICATE_POLICIES,
    PRESETS,
    SOLVERS,
    SPLIT_METHODS,
    apply_preset,
)
from walsspark.session import SparkSetup, parse_conf

log = logging.getLogger("walsspark")


def _number_or_text(value: str) -> float | str:
    """A number when the text is one (scalar weights), else the text (a weight scheme)."""
    try:
        return float(value)
    except ValueError:
        return value


class _ArgumentParser(argparse.ArgumentParser):
    """A usage mistake ends like any other input error: one line, exit status 2."""

    def error(self, message: str):
        raise InputError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="walsspark", description="Weighted ALS matrix factorization on Spark."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    _add_conf(parser, dest="conf_before")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _train_parser(subparsers)
    _recommend_parser(subparsers)
    _project_parser(subparsers)
    _evaluate_parser(subparsers)
    _split_parser(subparsers)
    _tune_parser(subparsers)
    return parser


def _add_conf(parser: argparse.ArgumentParser, dest: str = "conf") -> None:
    parser.add_argument(
        "--conf",
        dest=dest,
        action="append",
        metavar="KEY=VALUE",
        help="a Spark setting, as for spark-submit (repeatable; before or after the subcommand)",
    )


def _add_ratings_input(parser: argparse.ArgumentParser) -> None:
    """The ratings input of ``train`` and ``tune``: where, in what format, which columns."""
    parser.add_argument(
        "--input", help=f"ratings file or directory, or '{SYNTHETIC_INPUT}' for the embedded data"
    )
    parser.add_argument("--format", choices=FORMATS)
    parser.add_argument("--user-col", dest="user_col")
    parser.add_argument("--item-col", dest="item_col")
    parser.add_argument("--rating-col", dest="rating_col")
    parser.add_argument("--timestamp-col", dest="timestamp_col")
    _add_text_options(parser)


def _add_text_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--id-type`` and ``--header``/``--no-header``: how csv and tsv input is read
    (``prefix`` names the input when the command has other formats, e.g. ``ratings-``)."""
    parser.add_argument(
        f"--{prefix}id-type",
        dest=f"{prefix.replace('-', '_')}id_type",
        choices=ID_TYPES,
        help="csv/tsv ids: auto (integers when every id of a column is one as written, "
        "else text: '007' and '7' are two ids), string, or integer ('007' is 7)",
    )
    parser.add_argument(
        f"--{prefix}header",
        dest=f"{prefix.replace('-', '_')}header",
        action=argparse.BooleanOptionalAction,
        help="csv/tsv: the first line names the columns (default: csv yes, tsv no); "
        "without one, columns are user, item, rating[, timestamp] by position",
    )


def _evaluate_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="rating and ranking metrics of a model on a test set",
        description="RMSE and MAE (explicit models) on the test ratings, and precision, "
        "recall, NDCG, MAP, hit rate @K and catalog coverage of the top-K lists of the test "
        "users, training items excluded. Writes a JSON file and prints a table.",
    )
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--test", required=True, help="test ratings (read like training input)")
    parser.add_argument(
        "--train",
        help="training ratings to exclude from the lists (default: the pairs saved with the model)",
    )
    parser.add_argument("--k", type=int, default=10, help="list length K")
    parser.add_argument(
        "--min-rating",
        dest="min_rating",
        type=float,
        help="test pairs rated at least this are relevant (default: all; implicit: r > 0)",
    )
    parser.add_argument("--format", choices=FORMATS, help="format of --test")
    parser.add_argument("--train-format", dest="train_format", choices=FORMATS)
    _add_text_options(parser)
    parser.add_argument("--user-col", dest="user_col")
    parser.add_argument("--item-col", dest="item_col")
    parser.add_argument(
        "--output", help="directory for the JSON summary (default: MODEL-evaluation)"
    )
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--master", help="Spark master for a new session")
    _add_conf(parser)
    return parser


def _split_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "split",
        help="write a seeded train/test split as Parquet",
        description="Split ratings into OUTPUT/train and OUTPUT/test (Parquet, the input's "
        "column names): random by rating, a fraction per user, leave-k-out per user, or by "
        "time. Seeded and reproducible.",
    )
    parser.add_argument("--input", required=True, help="ratings file or directory")
    parser.add_argument("--format", choices=FORMATS, default="auto")
    parser.add_argument("--user-col", dest="user_col", default="user_id")
    parser.add_argument("--item-col", dest="item_col", default="item_id")
    parser.add_argument("--rating-col", dest="rating_col", default="rating")
    parser.add_argument("--timestamp-col", dest="timestamp_col")
    _add_text_options(parser)
    parser.add_argument("--method", choices=SPLIT_METHODS, default="random")
    parser.add_argument(
        "--fraction", type=float, default=0.2, help="share held out (random, user-fraction, time)"
    )
    parser.add_argument("--k", type=int, default=1, help="ratings per user (leave-k-out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duplicates", choices=DUPLICATE_POLICIES, default="mean")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--master", help="Spark master for a new session")
    _add_conf(parser)
    return parser


def _train_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train user and item factors and save the model",
        description="Train a WALS model. Options may also come from a TOML file (--config); "
        "options on the command line win.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", help="TOML file with any of these options (as keys)")
    _add_ratings_input(parser)
    parser.add_argument("--rank", type=int, help="number of latent factors k")
    parser.add_argument("--sweeps", type=int, help="passes over the data (MLlib maxIter)")
    parser.add_argument("--unobserved-weight", dest="unobserved_weight", type=float, help="w0")
    parser.add_argument("--regularization", type=float, help="lambda (MLlib regParam)")
    parser.add_argument(
        "--reg-exponent",
        dest="reg_exponent",
        type=float,
        help="nu: lambda_i = lambda (n_i + offset)^nu",
    )
    parser.add_argument(
        "--reg-offset",
        dest="reg_offset",
        type=float,
        help="added to each id's count n_i in lambda_i (default 0; Rendle et al. 2022)",
    )
    weights_help = (
        "{} weights: a number, linear:F (F / n, n = the id's training ratings), power:E "
        "(n^-E) or col:NAME (an input column)"
    )
    parser.add_argument(
        "--row-weights", dest="row_weights", type=_number_or_text, help=weights_help.format("row")
    )
    parser.add_argument(
        "--col-weights", dest="col_weights", type=_number_or_text, help=weights_help.format("col")
    )
    unobserved_help = (
        "how the unobserved weight of a {}'s entries follows its popularity: uniform, or "
        "power:E (n^E, normalized so that the weights average w0; eALS uses items' power:0.5)"
    )
    parser.add_argument(
        "--unobserved-row-weights",
        dest="unobserved_row_weights",
        metavar="SCHEME",
        help=unobserved_help.format("user"),
    )
    parser.add_argument(
        "--unobserved-col-weights",
        dest="unobserved_col_weights",
        metavar="SCHEME",
        help=unobserved_help.format("item"),
    )
    parser.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="named objective settings (tf-wals, mllib-explicit, mllib-implicit); options "
        "given explicitly win",
    )
    parser.add_argument(
        "--implicit",
        dest="implicit_prefs",
        action="store_true",
        help="implicit feedback: target 1 for r > 0, confidence from r (MLlib implicitPrefs)",
    )
    parser.add_argument("--alpha", type=float, help="implicit confidence scale (MLlib alpha)")
    parser.add_argument(
        "--confidence",
        choices=CONFIDENCES,
        help="implicit confidence: linear (alpha r) or log (alpha log(1 + r / eps))",
    )
    parser.add_argument("--epsilon", type=float, help="eps of the log confidence")
    parser.add_argument("--weight-col", dest="weight_col", help="per-entry confidence column")
    parser.add_argument("--solver", choices=SOLVERS, help="exact (reference) or cg")
    parser.add_argument(
        "--cg-steps", dest="cg_steps", type=int, help="conjugate gradient steps per half-sweep"
    )
    parser.add_argument(
        "--tol", type=float, help="stop when a sweep changes the loss by less than this (relative)"
    )
    parser.add_argument("--holdout-fraction", dest="holdout_fraction", type=float)
    parser.add_argument(
        "--split", choices=SPLIT_METHODS, help="how the holdout is chosen (default random)"
    )
    parser.add_argument(
        "--holdout-k", dest="holdout_k", type=int, help="ratings per user for leave-k-out"
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--num-user-blocks", dest="num_user_blocks", type=int)
    parser.add_argument("--num-item-blocks", dest="num_item_blocks", type=int)
    parser.add_argument(
        "--checkpoint-interval",
        dest="checkpoint_interval",
        type=int,
        help="a checkpoint every N sweeps (with --checkpoint-dir or spark.checkpoint.dir)",
    )
    parser.add_argument(
        "--checkpoint-dir",
        dest="checkpoint_dir",
        help="keep every N-th sweep's factors here (any Hadoop file system): a lost executor "
        "or a killed driver (--resume) continues from the last one",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in --checkpoint-dir (same data and options)",
    )
    parser.add_argument("--duplicates", choices=DUPLICATE_POLICIES)
    parser.add_argument("--output", help="model directory to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model")
    parser.add_argument("--master", help="Spark master for a new session (default local[*])")
    parser.add_argument(
        "--recommend-k",
        dest="recommend_k",
        type=int,
        help="also write the top-K items per user and users per item after training",
    )
    parser.add_argument(
        "--recommendations", help="where those go (default: OUTPUT-recommendations)"
    )
    _add_conf(parser)
    return parser


def _tune_parser(subparsers) -> argparse.ArgumentParser:
    from walsspark.tuning import default_space

    implicit, explicit = default_space(True, False), default_space(False, False)

    def described(name: str) -> str:
        forms = {"implicit": implicit.get(name), "explicit": explicit.get(name)}
        if forms["implicit"] == forms["explicit"]:
            return f"{name} {forms['implicit'].describe()}"
        return f"{name} " + ", ".join(
            f"{dim.describe()} ({kind})" for kind, dim in forms.items() if dim is not None
        )

    space = "; ".join(described(name) for name in {**explicit, **implicit})
    parser = subparsers.add_parser(
        "tune",
        help="search hyperparameters on a validation split, in one Spark session",
        description="Train every candidate on one validation split and one layout of the "
        "data, in one Spark session; write DIR/trials.parquet, DIR/trials.csv (one row per "
        "trial) and DIR/best.toml, which 'walsspark train --config DIR/best.toml' accepts. "
        "Options of train given here are fixed for every trial (a --preset fixes its "
        "settings); the space covers the rest of: "
        "regularization, reg_exponent, reg_offset, alpha, unobserved_weight, "
        "unobserved_row_weights, "
        "unobserved_col_weights, confidence. Default space: "
        f"{space}; with implicit feedback w0 is fixed at 1 (only alpha / w0 and "
        "lambda / w0 matter). A grid file maps a parameter to a list of values, one value, "
        "or {uniform = [LOW, HIGH]} / {log-uniform = [LOW, HIGH]}.",
        argument_default=argparse.SUPPRESS,
    )
    _add_ratings_input(parser)
    parser.add_argument("--duplicates", choices=DUPLICATE_POLICIES)
    parser.add_argument("--grid", metavar="FILE.toml", help="the search space (see above)")
    parser.add_argument(
        "--search",
        choices=SEARCH_METHODS,
        help="grid: every combination; random: --trials seeded draws; halving: successive "
        "halving of --trials candidates, few sweeps first, the best 1/eta continued with "
        "eta times more, up to --sweeps (default: grid for a grid file of lists, else random)",
    )
    parser.add_argument(
        "--trials",
        type=int,
        help=f"candidates of random and halving search (default {TUNE_DEFAULTS['trials']})",
    )
    parser.add_argument(
        "--eta", type=int, help=f"halving: keep 1/eta per stage (default {TUNE_DEFAULTS['eta']})"
    )
    parser.add_argument(
        "--metric",
        help="rmse, or ndcg, recall, precision, map or hit_rate at K on the validation "
        f"split, training items excluded (default {TUNE_DEFAULTS['metric']})",
    )
    parser.add_argument(
        "--validation",
        help="the split: user-fraction:F, random:F, time:F or leave-k-out:K, seeded by "
        f"--seed (default {TUNE_DEFAULTS['validation']})",
    )
    parser.add_argument(
        "--min-rating",
        dest="min_rating",
        type=float,
        help="relevant validation pairs: rated at least this (default: all; implicit r > 0)",
    )
    parser.add_argument("--output", help="directory for the trials and best.toml")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier output")
    fixed = parser.add_argument_group("fixed for every trial (as for train)")
    fixed.add_argument("--implicit", dest="implicit_prefs", action="store_true")
    fixed.add_argument("--preset", choices=tuple(PRESETS))
    for name, kind in (
        ("rank", int), ("sweeps", int), ("seed", int), ("num-user-blocks", int),
        ("num-item-blocks", int), ("regularization", float), ("reg-exponent", float),
        ("reg-offset", float),
        ("unobserved-weight", float), ("alpha", float), ("epsilon", float),
        ("row-weights", _number_or_text), ("col-weights", _number_or_text),
        ("unobserved-row-weights", str), ("unobserved-col-weights", str),
        ("weight-col", str), ("cg-steps", int), ("tol", float),
    ):  # fmt: skip
        fixed.add_argument(f"--{name}", dest=name.replace("-", "_"), type=kind)
    fixed.add_argument("--confidence", choices=CONFIDENCES)
    fixed.add_argument("--solver", choices=SOLVERS)
    parser.add_argument("--master", help="Spark master for a new session (default local[*])")
    _add_conf(parser)
    return parser


def _recommend_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "recommend",
        help="write the top-K items for every user (or users for every item)",
        description="Batch top-K from a trained model. Items a user already rated are "
        "excluded unless --include-seen; the rated pairs come from --ratings, or else from "
        "the model's recorded training input and holdout split.",
    )
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--k", type=int, default=10, help="recommendations per id")
    parser.add_argument(
        "--for",
        dest="for_side",
        choices=("users", "items"),
        default="users",
        help="users: top items per user (project_row); items: top users per item",
    )
    parser.add_argument("--ratings", help="ratings whose pairs are excluded (seen)")
    parser.add_argument("--ratings-format", dest="ratings_format", choices=FORMATS)
    _add_text_options(parser, prefix="ratings-")
    parser.add_argument("--user-col", dest="user_col")
    parser.add_argument("--item-col", dest="item_col")
    parser.add_argument("--include-seen", dest="include_seen", action="store_true")
    parser.add_argument("--ids", help="text file with one query id per line (default: all)")
    parser.add_argument("--output", help="output directory (default: MODEL-recommendations-FOR)")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument(
        "--max-candidate-mb",
        dest="max_candidate_mb",
        type=float,
        default=256.0,
        help="ship the ranked side whole to every task up to this size; beyond it, score "
        "block pairs and merge partial top-Ks",
    )
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--master")
    _add_conf(parser)
    return parser


def _project_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "project",
        help="fold in new users (or items): factors without retraining",
        description="Solve factors for the rows of new ratings against the trained other "
        "side with the training normal equation; optionally their top-K.",
    )
    parser.add_argument("--model", required=True, help="model directory")
    parser.add_argument("--input", required=True, help="ratings of the new users (or items)")
    parser.add_argument(
        "--for",
        dest="for_side",
        choices=("users", "items"),
        default="users",
        help="users: the input's users are new; items: its items are",
    )
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--k", type=int, help="also write their top-K (rated ones excluded)")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="input format")
    parser.add_argument("--user-col", dest="user_col")
    parser.add_argument("--item-col", dest="item_col")
    parser.add_argument("--rating-col", dest="rating_col")
    _add_text_options(parser)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--master")
    _add_conf(parser)
    return parser


def load_config(path: str) -> dict[str, Any]:
    """Options from a TOML file: keys are option names, with dashes or underscores."""
    raw = read_toml(path, "config file")
    values = raw["train"] if isinstance(raw.get("train"), dict) else raw
    config = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in TRAIN_DEFAULTS:
            raise InputError(f"unknown option '{key}' in config file {path}")
        if name in STRING_OPTIONS and not (value is None or isinstance(value, str)):
            raise InputError(
                f"option '{key}' in config file {path} must be a string, got {value!r}"
            )
        if name in ("overwrite", "resume") and not isinstance(value, bool):
            raise InputError(
                f"option '{key}' in config file {path} must be true or false, got {value!r}"
            )
        config[name] = value
    if values is not raw:
        for key in raw:
            if key != "train":
                raise InputError(f"unknown option '{key}' outside [train] in config file {path}")
    return config


def resolve_train_options(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults, then the config file, then the command line."""
    internal = ("command", "config", "verbose", "conf", "conf_before")
    given = {k: v for k, v in vars(args).items() if k not in internal}
    options = dict(TRAIN_DEFAULTS)
    config: dict[str, Any] = {}
    config_path = getattr(args, "config", None)
    if config_path:
        config = load_config(config_path)
        # Relative paths in a config file are relative to the working directory, as on
        # the command line, so that `--config conf/x.toml` behaves like typing the options.
        options.update(config)
    options.update(given)
    options = apply_preset(options, set(given) | set(config))
    if options["input"] is None:
        raise InputError("no input given: pass --input PATH (or --input synthetic)")
    if options["output"] is None:
        raise InputError("no output given: pass --output MODEL_DIR")
    if options["format"] not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {options['format']!r}")
    return options


def spark_setup(args: argparse.Namespace, master: str | None) -> SparkSetup:
    """The session this run uses: ``--master`` and every ``--conf`` (before or after the
    subcommand name; later ones win)."""
    values = (getattr(args, "conf_before", None) or []) + (getattr(args, "conf", None) or [])
    return SparkSetup(master=master, settings=parse_conf(values))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except InputError as error:
        print(f"walsspark: error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        if args.command == "train":
            options = resolve_train_options(args)
            summary = run_train(options, spark_setup(args, options["master"]))
            print_train_summary(summary)
            log.debug("summary: %s", json.dumps(summary, default=str))
            return 0
        if args.command == "tune":
            plan = resolve_tune_options(args)
            print_tune_summary(run_tune(plan, spark_setup(args, plan.options["master"])))
            return 0
        setup = spark_setup(args, args.master)
        if args.command == "evaluate":
            print_evaluate_summary(run_evaluate(args, setup))
        if args.command == "split":
            print_split_summary(run_split(args, setup))
        if args.command == "project":
            print_project_summary(run_project(args, setup))
        if args.command == "recommend":
            print_recommend_summary(run_recommend(args, setup))
    except InputError as error:
        print(f"walsspark: error: {error}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """The ``walsspark`` console script: :func:`main` on ``sys.argv``, exiting non-zero on
    failure. Databricks' python_wheel_task calls this function itself and ignores what it
    returns, so a failure must be an exit, not a return value.

    Ctrl-C ends the run with one line and exit status 130 (:mod:`walsspark.interrupts`)."""
    from walsspark import interrupts

    interrupts.install()
    try:
        status = main()
    except KeyboardInterrupt:
        status = interrupts.finish()
    if status:
        sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()
