"""Implicit-feedback quality: walsspark tuned by ``walsspark tune`` against Spark MLlib's
implicit ALS tuned over its grid, with EASE as the single-machine reference; one run.

Protocol (the same for every model):

1. Positives: the ratings >= ``--min-rating`` (4), each as an interaction of value 1.
2. Test split: per user, 20% of the positives held out (``walsspark.splits``,
   ``user-fraction``, seeded with ``--seed``). The rest is the training split.
3. Tuning, on a validation split of the training split (per user 20%, the split
   ``walsspark tune --validation user-fraction:0.2 --seed S`` makes, so every model is
   picked on the same pairs) by validation NDCG@K, with the same budget in trials:
   - MLlib ALS (``implicitPrefs``): its grid regParam x alpha (``--regs`` x ``--alphas``);
   - walsspark: ``walsspark tune --search random --trials N`` (N = the size of MLlib's grid)
     over its default space (lambda, nu, alpha, the confidence form, the items'
     popularity-scaled unobserved weights), run as a user runs it: its own process, its
     trials table and ``best.toml``;
   - EASE: its one parameter lambda over ``--ease-lambdas``.
4. Each winner is refit on the whole training split and scored once on the test split.

Scoring: the same code for the factor models, :func:`walsspark.recommend.recommend` of
the factor tables (top K, training positives excluded) and
:func:`walsspark.evaluate.ranking_metrics` (NDCG, recall, precision, MAP, hit rate @K,
coverage); EASE's top-K lists (numpy, training items excluded) go through the same
``ranking_metrics``. Both factor models use rank 64 and 15 sweeps / maxIter, 2 x 2 blocks.

Example::

    python benchmarks/bench_quality.py --json /tmp/bench-quality.json
    python benchmarks/bench_quality.py --data ../shared/data/ml-100k/u.data
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_train import (  # noqa: E402 - needs the path above; also puts the repo on sys.path
    ALTERNATIVE_DATA,
    DEFAULT_DATA,
    add_data_arguments,
    benchmark_session,
    read_benchmark_ratings,
    resolve_data,
)
from ease import ease_top_k  # noqa: E402

HEADLINE = ("ndcg", "recall", "coverage")
METRICS = ("ndcg", "recall", "precision", "map", "hit_rate", "coverage")
TARGET = 1.05  # walsspark's test NDCG@K over MLlib's (the goal beyond: 1.1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="MLlib implicit ALS tuned over its grid, walsspark tuned by walsspark "
        "tune with as many trials, and EASE, picked on one validation split and scored on "
        "the test split (NDCG@K, recall@K, coverage).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_data_arguments(parser)
    parser.add_argument("--min-rating", type=float, default=4.0, help="positives: rating >= this")
    parser.add_argument("--k", type=int, default=10, help="list length K")
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--sweeps", type=int, default=15, help="sweeps (MLlib maxIter)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="per-user test share")
    parser.add_argument("--regs", default="0.03,0.1,0.3,1", help="MLlib regParam grid")
    parser.add_argument("--alphas", default="0.3,1,3,10,30", help="MLlib alpha grid")
    parser.add_argument(
        "--search", default="random", choices=("random", "halving"), help="walsspark tune search"
    )
    parser.add_argument(
        "--trials", type=int, help="walsspark tune trials (default: MLlib's grid size)"
    )
    parser.add_argument("--ease-lambdas", default="100,300,1000,3000", help="EASE lambda grid")
    parser.add_argument("--seed", type=int, default=42, help="split and initialization seed")
    parser.add_argument("--blocks", type=int, default=2, help="user blocks = item blocks")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this file")
    return parser.parse_args(argv)


def floats(text: str) -> list[float]:
    return [float(value) for value in text.split(",") if value.strip()]


# --------------------------------------------------------------------------------------
# Fits: (user factors, item factors) tables with columns id, features
# --------------------------------------------------------------------------------------


def fit_walsspark(spark, train, args, settings: dict):
    """walsspark with the settings of a ``best.toml`` (train config keys)."""
    from walsspark.params import WALSParams
    from walsspark.train import fit
    from walsspark.weighting import entry_weights

    params = WALSParams.from_dict(
        {
            **settings,
            "rank": args.rank,
            "sweeps": args.sweeps,
            "implicit_prefs": True,
            "num_user_blocks": args.blocks,
            "num_item_blocks": args.blocks,
            "seed": args.seed,
            "holdout_fraction": 0.0,
        }
    ).validate()
    trained = fit(spark, entry_weights(train, params), params)
    users, items = trained.user_factors().cache(), trained.item_factors().cache()
    users.count(), items.count()
    trained.release()
    return users, items


def fit_mllib(train, args, reg: float, alpha: float, seed: int):
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    als = ALS(
        rank=args.rank,
        maxIter=args.sweeps,
        regParam=reg,
        alpha=alpha,
        implicitPrefs=True,
        numUserBlocks=args.blocks,
        numItemBlocks=args.blocks,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        seed=seed,
    )
    model = als.fit(train.select(F.col("user").cast("int"), F.col("item").cast("int"), "rating"))
    users = model.userFactors.select(F.col("id").cast("long").alias("id"), "features").cache()
    items = model.itemFactors.select(F.col("id").cast("long").alias("id"), "features").cache()
    users.count(), items.count()
    return users, items


def score(spark, factors, train, relevant, args) -> dict:
    """Ranking metrics of the top-K lists (training pairs excluded) against ``relevant``."""
    from pyspark.sql import functions as F

    from walsspark.evaluate import ranking_metrics
    from walsspark.recommend import recommend

    users, items = factors
    queries = users.join(relevant.select(F.col("user").alias("id")).distinct(), "id", "left_semi")
    known = relevant.join(users.select(F.col("id").alias("user")), "user", "left_semi").join(
        items.select(F.col("id").alias("item")), "item", "left_semi"
    )
    num_items = items.count()
    seen = train.select(F.col("user").alias("query"), F.col("item").alias("candidate"))
    top = recommend(spark, queries, items, args.k, args.rank, seen=seen, num_candidates=num_items)
    metrics = ranking_metrics(top, known, args.k, num_items)
    return {name.split("@")[0]: value for name, value in metrics.items()}


def release(factors) -> None:
    for frame in factors:
        frame.unpersist()


def scored_ease(spark, train, relevant, args, lam: float) -> dict:
    """EASE fit on ``train`` (numpy on the driver), its top-K scored against ``relevant``."""
    import numpy as np

    from walsspark.evaluate import ranking_metrics

    pairs = train.select("user", "item").toPandas()
    users, user_index = np.unique(pairs["user"].to_numpy(), return_inverse=True)
    items, item_index = np.unique(pairs["item"].to_numpy(), return_inverse=True)
    top, scores = ease_top_k(user_index, item_index, len(users), len(items), lam, args.k)
    rows = [
        (int(users[u]), [(int(items[i]), float(s)) for i, s in zip(top[u], scores[u], strict=True)])
        for u in range(len(users))
    ]
    recommendations = spark.createDataFrame(
        rows, "id long, recommendations array<struct<id: long, score: float>>"
    )
    known = relevant.join(train.select("user").distinct(), "user", "left_semi").join(
        train.select("item").distinct(), "item", "left_semi"
    )
    metrics = ranking_metrics(recommendations, known.select("user", "item"), args.k, len(items))
    return {name.split("@")[0]: value for name, value in metrics.items()}


# --------------------------------------------------------------------------------------
# Protocol
# --------------------------------------------------------------------------------------


def tune_grid(spark, fit_fn, grid, fit_train, validation, args, label):
    """Score every grid setting on the validation split; the results, best first."""
    results = []
    for setting in grid:
        start = time.perf_counter()
        factors = fit_fn(fit_train, setting)
        metrics = score(spark, factors, fit_train, validation, args)
        release(factors)
        results.append({"setting": setting, "validation": metrics})
        print(
            f"  {label} {setting}: validation NDCG@{args.k} {metrics['ndcg']:.4f} "
            f"recall@{args.k} {metrics['recall']:.4f} ({time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return sorted(results, key=lambda r: -r["validation"]["ndcg"])


def run_walsspark_tune(train, args, trials: int, workdir: Path) -> dict:
    """``walsspark tune`` on the training split, in its own process; its best settings."""
    source = workdir / "train.parquet"
    train.write.mode("overwrite").parquet(str(source))
    output = workdir / "tuned"
    command = [
        sys.executable, "-m", "walsspark", "tune", "--input", str(source),
        "--user-col", "user", "--item-col", "item", "--rating-col", "rating",
        "--implicit", "--rank", str(args.rank), "--sweeps", str(args.sweeps),
        "--seed", str(args.seed), "--num-user-blocks", str(args.blocks),
        "--num-item-blocks", str(args.blocks), "--search", args.search,
        "--trials", str(trials), "--metric", f"ndcg@{args.k}",
        "--validation", "user-fraction:0.2", "--output", str(output), "--overwrite",
        "--master", args.master,
    ]  # fmt: skip
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, text=True, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    for line in completed.stderr.splitlines():
        if "trial" in line or "validation split" in line:
            print(f"  walsspark {line}", file=sys.stderr, flush=True)
    if completed.returncode != 0:
        raise RuntimeError(f"walsspark tune failed: {completed.stderr[-2000:]}")
    best = tomllib.loads((output / "best.toml").read_text())
    searched = (
        "regularization", "reg_exponent", "reg_offset", "alpha", "unobserved_weight",
        "confidence", "unobserved_row_weights", "unobserved_col_weights", "epsilon",
    )  # fmt: skip
    return {
        "settings": {k: v for k, v in best.items() if k in searched},
        "seconds": seconds,
        "summary": completed.stdout.strip().splitlines()[-1:] or [""],
    }


def run(spark, data_path: Path, args) -> dict:
    from pyspark.sql import functions as F

    from walsspark.splits import split_ratings

    ratings = read_benchmark_ratings(spark, data_path, args)
    positives = ratings.filter(F.col("rating") >= args.min_rating).select(
        "user", "item", F.lit(1.0).alias("rating")
    )
    train, test = split_ratings(positives, "user-fraction", args.test_fraction, 1, args.seed)
    train, test = train.cache(), test.cache()
    # The split walsspark tune makes of its input (--validation user-fraction:0.2, --seed).
    fit_train, validation = split_ratings(train, "user-fraction", 0.2, 1, args.seed)
    fit_train, validation = fit_train.cache(), validation.cache()
    counts = {
        "ratings": ratings.count(),
        "positives": positives.count(),
        "train": train.count(),
        "test": test.count(),
        "fit_train": fit_train.count(),
        "validation": validation.count(),
    }
    print(f"{data_path}: {counts}", file=sys.stderr, flush=True)

    grid = list(itertools.product(floats(args.regs), floats(args.alphas)))
    trials = args.trials or len(grid)

    def mllib(train_frame, setting, seed=args.seed):
        reg, alpha = setting
        return fit_mllib(train_frame, args, reg, alpha, seed)

    def test_figures(fit_once) -> dict:
        start = time.perf_counter()
        factors = fit_once(train)
        seconds = time.perf_counter() - start
        metrics = score(spark, factors, train, test, args)
        release(factors)
        return {**metrics, "fit_seconds": seconds}

    start = time.perf_counter()
    mllib_grid = tune_grid(spark, mllib, grid, fit_train, validation, args, "MLlib")
    mllib_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as workdir:
        tuned = run_walsspark_tune(train, args, trials, Path(workdir))
    ease_grid = []
    for lam in floats(args.ease_lambdas):
        metrics = scored_ease(spark, fit_train, validation, args, lam)
        ease_grid.append({"setting": lam, "validation": metrics})
        print(f"  EASE lambda {lam:g}: validation NDCG@{args.k} {metrics['ndcg']:.4f}",
              file=sys.stderr, flush=True)  # fmt: skip
    ease_grid.sort(key=lambda r: -r["validation"]["ndcg"])

    best_mllib = mllib_grid[0]["setting"]
    best_ease = ease_grid[0]["setting"]
    ease_start = time.perf_counter()
    ease_test = scored_ease(spark, train, test, args, best_ease)
    ease_test["fit_seconds"] = time.perf_counter() - ease_start
    result = {
        "data": str(data_path),
        "counts": counts,
        "budget_trials": {"mllib": len(grid), "walsspark": trials},
        "mllib": {
            "grid": {"regParam": floats(args.regs), "alpha": floats(args.alphas)},
            "validation": mllib_grid,
            "tuning_seconds": mllib_seconds,
            "setting": {"regParam": best_mllib[0], "alpha": best_mllib[1]},
            "test": test_figures(lambda frame: mllib(frame, best_mllib)),
        },
        "walsspark": {
            "search": args.search,
            "tuning_seconds": tuned["seconds"],
            "setting": tuned["settings"],
            "summary": tuned["summary"],
            "test": test_figures(
                lambda frame: fit_walsspark(spark, frame, args, tuned["settings"])
            ),
        },
        "ease": {"validation": ease_grid, "setting": {"lambda": best_ease}, "test": ease_test},
    }
    for frame in (train, test, fit_train, validation):
        frame.unpersist()
    return result


def format_report(result: dict, args) -> str:
    k = args.k
    head = f"{'':<22}" + "".join(f"{n + '@' + str(k):>13}" for n in METRICS) + f"{'fit s':>8}"
    budget = result["budget_trials"]
    lines = [
        f"implicit quality: {result['data']}",
        f"positives: rating >= {args.min_rating:g}; {result['counts']}",
        f"rank {args.rank}, {args.sweeps} sweeps, {args.blocks}x{args.blocks} blocks; picked by "
        f"validation NDCG@{k}; trials: MLlib grid {budget['mllib']}, walsspark tune "
        f"{args.search} {budget['walsspark']}",
        "",
        head,
        "-" * len(head),
    ]

    def row(label, figures):
        return (
            f"{label:<22}"
            + "".join(f"{figures[n]:>13.4f}" for n in METRICS)
            + f"{figures['fit_seconds']:>8.1f}"
        )

    lines.append(row("MLlib ALS tuned", result["mllib"]["test"]))
    lines.append(row("walsspark tuned", result["walsspark"]["test"]))
    lines.append(row("EASE (reference)", result["ease"]["test"]))
    lines.append("")
    lines.append(
        f"MLlib: {result['mllib']['setting']} (tuning {result['mllib']['tuning_seconds']:.0f} s)"
    )
    lines.append(
        f"walsspark: {result['walsspark']['setting']} "
        f"(walsspark tune {result['walsspark']['tuning_seconds']:.0f} s, its own process)"
    )
    lines.append(f"EASE: {result['ease']['setting']}")
    for metric in HEADLINE:
        ratio = result["walsspark"]["test"][metric] / result["mllib"]["test"][metric]
        note = ""
        if metric == "ndcg":
            note = f" -> {'MET' if ratio >= TARGET else 'NOT MET'} (target {TARGET:g}x)"
        lines.append(f"  walsspark / MLlib {metric}@{k}: {ratio:.4f}{note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_path = resolve_data(args.data)
    if data_path is None:
        print(
            f"bench_quality: ratings not found: {args.data}. Expected ML-1M at {DEFAULT_DATA} "
            f"or ML-100k at {ALTERNATIVE_DATA}; pass --data PATH.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.WARNING)
    spark = benchmark_session(args, "walsspark-bench-quality")
    start = time.perf_counter()
    result = run(spark, data_path, args)
    result["seconds"] = time.perf_counter() - start
    print(format_report(result, args))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
