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
    "recommend_k": None,
    "recommendations": None,
}
# Options that must be strings when they come from a config file (the rest are checked
# by WALSParams.validate, or are booleans).
STRING_OPTIONS = frozenset(
    "input format user_col item_col rating_col timestamp_col duplicates output master "
    "recommendations".split()
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
    parser.add_argument(
        "--recommend-k",
        dest="recommend_k",
        type=int,
        help="also write the top-K items per user and users per item after training",
    )
    parser.add_argument(
        "--recommendations", help="where those go (default: OUTPUT-recommendations)"
    )
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
    _recommend_parser(subparsers)
    _project_parser(subparsers)
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
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--master")
    return parser


def run_project(args: argparse.Namespace) -> dict[str, Any]:
    """Read new ratings, project them, write ``factors/`` (and ``recommendations/``)."""
    from pyspark.sql import functions as F

    from walsspark.model import WALSModel, check_output_path, spark_path
    from walsspark.model import write_directory_atomically as write_atomically
    from walsspark.project import project
    from walsspark.ratings_io import resolve_duplicates, validate_ratings
    from walsspark.recommend import recommend
    from walsspark.session import get_or_create_session

    if args.k is not None and args.k < 1:
        raise InputError(f"k must be >= 1, got {args.k}")
    check_model_path(args.model)
    check_output_path(args.output, args.overwrite)
    spark = get_or_create_session(master=args.master)
    model = WALSModel.load(spark, args.model)
    data = model.metadata["data"]
    options = {
        "input": args.input,
        "format": args.format,
        "user_col": args.user_col or data["user_col"],
        "item_col": args.item_col or data["item_col"],
        "rating_col": args.rating_col or data["rating_col"],
        "timestamp_col": None,
    }
    ratings = _read_input(spark, options)
    validate_ratings(ratings)
    policy = "mean" if model.params.duplicates == "last" else model.params.duplicates
    ratings = resolve_duplicates(ratings.select("user", "item", "rating"), policy)
    for column, expected in (("user", data["user_id_type"]), ("item", data["item_id_type"])):
        actual = ratings.schema[column].dataType.simpleString()
        if actual != expected:
            raise InputError(
                f"{column} ids in {args.input} are {actual} but the model's are {expected}"
            )
    by_users = args.for_side == "users"
    row, other = ("user", "item") if by_users else ("item", "user")
    fixed = model.item_factors if by_users else model.user_factors
    weights = model.params.user_weights()
    weights = weights if by_users else weights.swapped()
    new = ratings.select(F.col(row).alias("row"), F.col(other).alias("other"), "rating").cache()
    factors = project(new, fixed, model.rank, weights).cache()
    tables = {"factors": factors}
    if args.k is not None:
        seen = new.select(F.col("row").alias("query"), F.col("other").alias("candidate"))
        tables["recommendations"] = recommend(
            spark, factors.select("id", "features"), fixed, args.k, model.rank, seen=seen
        )

    def write(staging: str) -> None:
        for name, table in tables.items():
            table.write.parquet(spark_path(staging, name))

    write_atomically(args.output, args.overwrite, write)
    written = spark.read.parquet(spark_path(args.output, "factors"))
    summary = {
        "output": os.path.abspath(args.output),
        "for": args.for_side,
        "rows": written.count(),
        "without_known_ratings": written.filter("rated = 0").count(),
        "examples": [],
    }
    if args.k is not None:
        summary["examples"] = (
            spark.read.parquet(spark_path(args.output, "recommendations"))
            .orderBy("id")
            .limit(3)
            .collect()
        )
    return summary


def print_project_summary(summary: dict[str, Any]) -> None:
    what = summary["for"][:-1]
    print(f"projected {summary['rows']} new {summary['for']} into {summary['output']}")
    if summary["without_known_ratings"]:
        print(
            f"walsspark: warning: {summary['without_known_ratings']} new {summary['for']} rated "
            "nothing the model knows and got zero factors",
            file=sys.stderr,
        )
    _print_examples(summary["examples"], what)


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
    recommendations_path = None
    if options["recommend_k"] is not None:
        k = options["recommend_k"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"recommend_k must be an integer >= 1, got {k!r}")
        recommendations_path = options["recommendations"] or (
            f"{options['output'].rstrip('/')}-recommendations"
        )
        check_output_path(recommendations_path, options["overwrite"])
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
    summary = {"output": os.path.abspath(options["output"]), **metadata}
    if recommendations_path is not None:
        summary["recommendations"] = write_recommendation_tables(
            spark,
            user_factors,
            item_factors,
            train.select("user", "item"),
            options["recommend_k"],
            params.rank,
            recommendations_path,
            options["overwrite"],
        )
    trained.release()
    return summary


def write_recommendation_tables(
    spark, user_factors, item_factors, pairs, k: int, rank: int, path: str, overwrite: bool
) -> dict[str, Any]:
    """Top-K items per user (``users/``) and users per item (``items/``), seen excluded."""
    from pyspark.sql import functions as F

    from walsspark.model import spark_path, write_directory_atomically
    from walsspark.recommend import recommend

    user_factors, item_factors = user_factors.cache(), item_factors.cache()
    tables = {
        "users": recommend(
            spark,
            user_factors,
            item_factors,
            k,
            rank,
            seen=pairs.select(F.col("user").alias("query"), F.col("item").alias("candidate")),
        ),
        "items": recommend(
            spark,
            item_factors,
            user_factors,
            k,
            rank,
            seen=pairs.select(F.col("item").alias("query"), F.col("user").alias("candidate")),
        ),
    }

    def write(staging: str) -> None:
        for name, table in tables.items():
            table.write.parquet(spark_path(staging, name))

    write_directory_atomically(path, overwrite, write)
    examples = {
        name: spark.read.parquet(spark_path(path, name)).orderBy("id").limit(3).collect()
        for name in tables
    }
    user_factors.unpersist()
    item_factors.unpersist()
    return {"path": os.path.abspath(path), "k": k, "examples": examples}


def _finite_or_none(metrics: dict | None) -> dict | None:
    if metrics is None:
        return None
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in metrics.items()
    }


def _print_examples(rows, what: str) -> None:
    for row in rows:
        best = ", ".join(f"{r['id']} ({r['score']:.2f})" for r in row["recommendations"][:5])
        print(f"  {what} {row['id']}: {best}")


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
    else:
        print(
            f"holdout: {evaluation['count']} ratings scored, {evaluation['cold_count']} cold "
            "(user or item unseen in training)"
        )
        for name in ("rmse", "mae", "rwse", "loss"):
            value = evaluation[name]
            print(f"  {name:5s} {value:.6g}" if value is not None else f"  {name:5s} n/a")
    recommendations = summary.get("recommendations")
    if recommendations:
        k = recommendations["k"]
        print(f"top-{k} recommendations written to {recommendations['path']} (users/, items/)")
        _print_examples(recommendations["examples"]["users"], "user")
        _print_examples(recommendations["examples"]["items"], "item")


def seen_pairs(spark, model, args) -> tuple[Any, str]:
    """The (user, item) pairs the model was trained on, and where they came from."""
    from walsspark.ratings_io import resolve_duplicates, split_holdout

    data = model.metadata["data"]
    if args.ratings:
        options = {
            "input": args.ratings,
            "format": args.ratings_format or "auto",
            "user_col": args.user_col or data["user_col"],
            "item_col": args.item_col or data["item_col"],
            "rating_col": data["rating_col"],
            "timestamp_col": None,
        }
        ratings, source = _read_input(spark, options), f"ratings {args.ratings}"
    else:
        options = {key: data.get(key) for key in TRAIN_DEFAULTS if key in data}
        if options.get("input") != SYNTHETIC_INPUT and not os.path.exists(str(options["input"])):
            raise InputError(
                f"the model's training input {options['input']} is gone: pass --ratings PATH "
                "for the pairs to exclude, or --include-seen"
            )
        ratings = _read_input(spark, options)
        params = model.params
        if data.get("timestamp_col") is None and params.duplicates == "last":
            raise InputError("cannot recompute the training pairs: pass --ratings PATH")
        ratings = resolve_duplicates(ratings.select("user", "item", "rating"), "sum")
        ratings, _ = split_holdout(ratings, params.holdout_fraction, params.seed)
        source = f"the model's training input {options['input']} (holdout removed)"
    for column, expected in (("user", data["user_id_type"]), ("item", data["item_id_type"])):
        actual = ratings.schema[column].dataType.simpleString()
        if actual != expected:
            raise InputError(
                f"{column} ids in {source} are {actual} but the model's are {expected}"
            )
    return ratings.select("user", "item"), source


def _read_ids(spark, path: str, id_type: str):
    from pyspark.sql import functions as F

    from walsspark.model import is_local_path, local_path

    if is_local_path(path) and not os.path.exists(local_path(path)):
        raise InputError(f"ids file not found: {path}")

    lines = spark.read.text(path).select(F.trim("value").alias("id")).filter("id != ''")
    cast = lines.selectExpr("id as raw", f"try_cast(id as {id_type}) as id")
    bad = cast.filter("id is null").limit(3).collect()
    if bad:
        raise InputError(f"ids in {path} are not of the model's id type {id_type}: {bad[0].raw!r}")
    if cast.limit(1).count() == 0:
        raise InputError(f"no ids in {path} (one id per line expected)")
    return cast.select("id").distinct()


def check_model_path(model: str) -> None:
    """Stop early, before Spark starts, when a local model path is not a model."""
    from walsspark.model import METADATA_FILE, is_local_path, local_path

    if is_local_path(model):
        if not os.path.isdir(local_path(model)):
            raise InputError(f"model directory not found: {model}")
        if not os.path.isfile(os.path.join(local_path(model), METADATA_FILE)):
            raise InputError(f"not a walsspark model (no {METADATA_FILE}): {model}")


def run_recommend(args: argparse.Namespace) -> dict[str, Any]:
    """Load the model, work out the seen pairs, write the top-K table."""
    from pyspark.sql import functions as F

    from walsspark.model import (
        WALSModel,
        check_output_path,
        is_local_path,
        local_path,
        spark_path,
        write_directory_atomically,
    )
    from walsspark.recommend import recommend
    from walsspark.session import get_or_create_session

    if args.k < 1:
        raise InputError(f"k must be >= 1, got {args.k}")
    if not args.max_candidate_mb > 0:
        raise InputError(f"max candidate size must be > 0 MB, got {args.max_candidate_mb}")
    output = args.output or f"{args.model.rstrip('/')}-recommendations-{args.for_side}"
    if is_local_path(output) and is_local_path(args.model):
        # Refuse any existing path (even an empty directory) without --overwrite, and an
        # output that contains or lies inside the model (--overwrite would delete it).
        if os.path.lexists(local_path(output)) and not args.overwrite:
            raise InputError(f"output path exists: {output} (pass --overwrite to replace it)")
        target = os.path.realpath(local_path(output))
        model_dir = os.path.realpath(local_path(args.model))
        if os.path.commonpath([target, model_dir]) in (target, model_dir):
            raise InputError(f"output path {output} overlaps the model directory {args.model}")
    check_output_path(output, args.overwrite)
    # Local paths are checked before Spark starts, so its start-up chatter does not
    # precede the error line (WALSModel.load and _read_ids check them again).
    check_model_path(args.model)
    if args.ids and is_local_path(args.ids) and not os.path.exists(local_path(args.ids)):
        raise InputError(f"ids file not found: {args.ids}")
    spark = get_or_create_session(master=args.master)
    model = WALSModel.load(spark, args.model)
    by_users = args.for_side == "users"
    query, candidates = (
        (model.user_factors, model.item_factors)
        if by_users
        else (model.item_factors, model.user_factors)
    )
    seen, source = None, "none (--include-seen)"
    if not args.include_seen:
        pairs, source = seen_pairs(spark, model, args)
        query_col, cand_col = ("user", "item") if by_users else ("item", "user")
        seen = pairs.select(F.col(query_col).alias("query"), F.col(cand_col).alias("candidate"))
    unknown: list = []
    unknown_count = 0
    if args.ids:
        id_type = query.schema["id"].dataType.simpleString()
        wanted = _read_ids(spark, args.ids, id_type).cache()
        missing = wanted.join(query.select("id"), "id", "left_anti")
        unknown_count = missing.count()
        unknown = [row["id"] for row in missing.orderBy("id").limit(5).collect()]
        query = query.join(wanted, "id", "left_semi")
    recommendations = recommend(
        spark,
        query,
        candidates,
        args.k,
        model.rank,
        seen=seen,
        max_candidate_bytes=int(args.max_candidate_mb * 1024 * 1024),
    )

    def write(staging: str) -> None:
        if args.format == "parquet":
            recommendations.write.parquet(spark_path(staging))
        else:
            lines = recommendations.select(
                F.concat_ws(
                    ",",
                    F.col("id").cast("string"),
                    F.array_join(F.transform("recommendations", lambda r: r["id"]), ","),
                ).alias("value")
            )
            lines.write.text(spark_path(staging))

    write_directory_atomically(output, args.overwrite, write)
    written = spark.read.parquet(spark_path(output)).count() if args.format == "parquet" else None
    return {
        "output": os.path.abspath(output),
        "for": args.for_side,
        "k": args.k,
        "seen": source,
        "rows": written,
        "unknown_ids": unknown_count,
        "unknown_examples": unknown,
        "examples": spark.read.parquet(spark_path(output)).orderBy("id").limit(3).collect()
        if args.format == "parquet"
        else [],
    }


def print_recommend_summary(summary: dict[str, Any]) -> None:
    print(f"top-{summary['k']} for every {summary['for'][:-1]} written to {summary['output']}")
    print(f"excluded seen pairs from: {summary['seen']}")
    if summary["rows"] is not None:
        print(f"{summary['rows']} rows")
    if summary["unknown_ids"]:
        print(
            f"walsspark: warning: {summary['unknown_ids']} requested ids are not in the model "
            "and got no recommendations "
            f"(e.g. {', '.join(map(repr, summary['unknown_examples']))})",
            file=sys.stderr,
        )
    _print_examples(summary["examples"], summary["for"][:-1])


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
        if args.command == "project":
            print_project_summary(run_project(args))
        if args.command == "recommend":
            summary = run_recommend(args)
            print_recommend_summary(summary)
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
