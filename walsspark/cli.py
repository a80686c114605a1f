"""The ``walsspark`` command line: parse and validate, then call the Spark layer.

Every problem with the user's input stops the run before training with one line on stderr,
``walsspark: error: <what is wrong>``, exit status 2, and nothing written.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import tomllib
from typing import Any

from walsspark.errors import InputError
from walsspark.params import DUPLICATE_POLICIES, WALSParams

log = logging.getLogger("walsspark")

SYNTHETIC_INPUT = "synthetic"
FORMATS = ("auto", "parquet", "csv", "tsv", "movielens")

# Defaults of `walsspark train` (TF WALS's where the concept is WALS-specific).
TRAIN_DEFAULTS: dict[str, Any] = {
    "input": None,
    "format": "auto",
    "user_col": "user_id",
    "item_col": "item_id",
    "rating_col": "rating",
    "timestamp_col": None,
    "rank": 10,
    "sweeps": 10,
    "unobserved_weight": 0.1,
    "regularization": 0.1,
    "reg_exponent": 0.0,
    "row_weights": 1.0,
    "col_weights": 1.0,
    "holdout_fraction": 0.1,
    "seed": 0,
    "num_user_blocks": None,
    "num_item_blocks": None,
    "duplicates": "mean",
    "output": None,
    "overwrite": False,
    "master": None,
}
# Options that must be strings when they come from a config file (the rest are checked
# by WALSParams.validate, or are booleans).
STRING_OPTIONS = frozenset(
    "input format user_col item_col rating_col timestamp_col duplicates output master".split()
)


def _train_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train user and item factors and save the model",
        description="Train a WALS model. Options may also come from a TOML file (--config); "
        "options on the command line win.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", help="TOML file with any of these options (as keys)")
    parser.add_argument(
        "--input", help=f"ratings file or directory, or '{SYNTHETIC_INPUT}' for the embedded data"
    )
    parser.add_argument("--format", choices=FORMATS)
    parser.add_argument("--user-col", dest="user_col")
    parser.add_argument("--item-col", dest="item_col")
    parser.add_argument("--rating-col", dest="rating_col")
    parser.add_argument("--timestamp-col", dest="timestamp_col")
    parser.add_argument("--rank", type=int, help="number of latent factors k")
    parser.add_argument("--sweeps", type=int, help="passes over the data (MLlib maxIter)")
    parser.add_argument("--unobserved-weight", dest="unobserved_weight", type=float, help="w0")
    parser.add_argument("--regularization", type=float, help="lambda (MLlib regParam)")
    parser.add_argument(
        "--reg-exponent", dest="reg_exponent", type=float, help="nu: lambda_i = lambda n_i^nu"
    )
    parser.add_argument("--row-weights", dest="row_weights", type=float, help="scalar row weight")
    parser.add_argument("--col-weights", dest="col_weights", type=float, help="scalar col weight")
    parser.add_argument("--holdout-fraction", dest="holdout_fraction", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--num-user-blocks", dest="num_user_blocks", type=int)
    parser.add_argument("--num-item-blocks", dest="num_item_blocks", type=int)
    parser.add_argument("--duplicates", choices=DUPLICATE_POLICIES)
    parser.add_argument("--output", help="model directory to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model")
    parser.add_argument("--master", help="Spark master for a new session (default local[*])")
    return parser


class _ArgumentParser(argparse.ArgumentParser):
    """A usage mistake ends like any other input error: one line, exit status 2."""

    def error(self, message: str):
        raise InputError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="walsspark", description="Weighted ALS matrix factorization on Spark."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _train_parser(subparsers)
    return parser


def load_config(path: str) -> dict[str, Any]:
    """Options from a TOML file: keys are option names, with dashes or underscores."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"cannot read config file {path}: {error}") from None
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
        if name == "overwrite" and not isinstance(value, bool):
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
    given = {k: v for k, v in vars(args).items() if k not in ("command", "config", "verbose")}
    options = dict(TRAIN_DEFAULTS)
    config_path = getattr(args, "config", None)
    if config_path:
        config = load_config(config_path)
        # Relative paths in a config file are relative to the working directory, as on
        # the command line, so that `--config conf/x.toml` behaves like typing the options.
        options.update(config)
    options.update(given)
    if options["input"] is None:
        raise InputError("no input given: pass --input PATH (or --input synthetic)")
    if options["output"] is None:
        raise InputError("no output given: pass --output MODEL_DIR")
    if options["format"] not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {options['format']!r}")
    return options


def params_from_options(options: dict[str, Any]) -> WALSParams:
    return WALSParams.from_dict(options).validate()


def _read_input(spark, options: dict[str, Any]):
    from walsspark.ratings_io import read_ratings

    if options["input"] == SYNTHETIC_INPUT:
        from walsspark.synthetic import DEFAULT_SIZE, synthetic_ratings

        table = synthetic_ratings(**DEFAULT_SIZE)
        frame = spark.createDataFrame(table.to_pandas())
        return frame.selectExpr(
            "user_id as user",
            "item_id as item",
            "cast(rating as double) as rating",
            "timestamp",
        )
    return read_ratings(
        spark,
        options["input"],
        fmt=options["format"],
        user_col=options["user_col"],
        item_col=options["item_col"],
        rating_col=options["rating_col"],
        timestamp_col=options["timestamp_col"],
    )


def run_train(options: dict[str, Any]) -> dict[str, Any]:
    """Read, validate, train, evaluate and save; return a summary."""
    from walsspark.evaluate import holdout_metrics
    from walsspark.model import check_output_path, save_model
    from walsspark.ratings_io import resolve_duplicates, split_holdout, validate_ratings
    from walsspark.session import get_or_create_session
    from walsspark.train import fit

    params = params_from_options(options)
    check_output_path(options["output"], options["overwrite"])
    spark = get_or_create_session(master=options["master"])
    ratings = _read_input(spark, options)
    validate_ratings(ratings)
    ratings = resolve_duplicates(ratings, params.duplicates)
    ratings = ratings.select("user", "item", "rating").cache()
    train, holdout = split_holdout(ratings, params.holdout_fraction, params.seed)
    train = train.cache()
    if train.limit(1).count() == 0:
        raise InputError("no ratings left for training after the holdout split")

    trained = fit(spark, train, params)
    user_factors, item_factors = trained.user_factors(), trained.item_factors()
    evaluation = None
    if params.holdout_fraction > 0:
        start = time.perf_counter()
        evaluation = holdout_metrics(user_factors, item_factors, holdout, params)
        log.info("evaluated the holdout in %.1f s", time.perf_counter() - start)
    metadata = {
        "params": params.to_dict(),
        "data": {
            "input": options["input"],
            "format": options["format"],
            "user_col": options["user_col"],
            "item_col": options["item_col"],
            "rating_col": options["rating_col"],
            "timestamp_col": options["timestamp_col"],
            "user_id_type": trained.users.id_type,
            "item_id_type": trained.items.id_type,
            "num_train_ratings": trained.num_ratings,
            "num_user_blocks": trained.users.num_blocks,
            "num_item_blocks": trained.items.num_blocks,
        },
        "history": [
            {"sweep": r.sweep, "loss": r.loss, "seconds": round(r.seconds, 3)}
            for r in trained.history
        ],
        "fit_seconds": round(trained.fit_seconds, 3),
        "evaluation": _finite_or_none(evaluation),
    }
    save_model(options["output"], user_factors, item_factors, metadata, options["overwrite"])
    trained.release()
    return {"output": os.path.abspath(options["output"]), **metadata}


def _finite_or_none(metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in metrics.items()
    }


def print_train_summary(summary: dict[str, Any]) -> None:
    history = summary["history"]
    print(f"model written to {summary['output']}")
    print(
        f"trained {summary['data']['num_train_ratings']} ratings, "
        f"rank {summary['params']['rank']}, {len(history)} sweeps in "
        f"{summary['fit_seconds']:.1f} s; final loss {history[-1]['loss']:.6g}"
    )
    evaluation = summary["evaluation"]
    if evaluation is None:
        print("no holdout evaluation (holdout fraction 0)")
        return
    print(
        f"holdout: {evaluation['count']} ratings scored, {evaluation['cold_count']} cold "
        "(user or item unseen in training)"
    )
    for name in ("rmse", "mae", "rwse", "loss"):
        value = evaluation[name]
        print(f"  {name:5s} {value:.6g}" if value is not None else f"  {name:5s} n/a")


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
            summary = run_train(options)
            print_train_summary(summary)
            log.debug("summary: %s", json.dumps(summary, default=str))
    except InputError as error:
        print(f"walsspark: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
