"""Implicit-feedback quality: walsspark against Spark MLlib's implicit ALS, one run.

Protocol (the same for both, all in one Spark session):

1. Positives: the ratings >= ``--min-rating`` (4), each as an interaction of value 1.
2. Test split: per user, 20% of the positives held out (``walsspark.splits``,
   ``user-fraction``, seeded). Validation split: per user, 20% of the remaining training
   positives (another seed).
3. Tuning: every setting of the grid (regularization x alpha for both; x w0 for walsspark)
   is trained on training-minus-validation and scored on the validation positives; the
   setting with the best validation NDCG@K is refit on the whole training split and
   scored on the test positives. Models are compared on the test figures only.
4. Equal settings: at MLlib's chosen (regularization, alpha), walsspark with the
   ``mllib-implicit`` preset (w0 = 1: the same Hu-Koren-Volinsky objective) is refit with
   several seeds; MLlib with as many seeds: their test figures should agree within the
   seed-to-seed spread.

Scoring: the same code for both models, :func:`walsspark.recommend.recommend` of the
factor tables (top K, training positives excluded) and
:func:`walsspark.evaluate.ranking_metrics` (NDCG, recall, precision, MAP, hit rate @K,
coverage). Both use rank 64 and 15 sweeps / maxIter, 2 x 2 blocks, ALS-WR scaled
regularization (lambda n_i, as MLlib computes it for implicit feedback too).

Example::

    python benchmarks/bench_quality.py --json /tmp/bench-quality.json
    python benchmarks/bench_quality.py --data ../shared/data/ml-100k/u.data
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
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

HEADLINE = ("ndcg", "recall")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Tune walsspark (implicit) and Spark MLlib implicit ALS over the same "
        "grid on a validation split, then compare NDCG@K and recall@K on the test split.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_data_arguments(parser)
    parser.add_argument("--min-rating", type=float, default=4.0, help="positives: rating >= this")
    parser.add_argument("--k", type=int, default=10, help="list length K")
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--sweeps", type=int, default=15, help="sweeps (MLlib maxIter)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="per-user test share")
    parser.add_argument("--regs", default="0.1,0.3,0.9", help="regularization grid (lambda)")
    parser.add_argument("--alphas", default="0.3,1,3", help="alpha grid")
    parser.add_argument("--w0s", default="1,0.5,2", help="walsspark unobserved weight grid")
    parser.add_argument("--seeds", type=int, default=2, help="seeds of the equal-settings runs")
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


def fit_walsspark(spark, train, args, reg: float, alpha: float, w0: float, seed: int):
    from walsspark.params import WALSParams
    from walsspark.train import fit
    from walsspark.weighting import entry_weights

    params = WALSParams(
        rank=args.rank,
        sweeps=args.sweeps,
        implicit_prefs=True,
        alpha=alpha,
        unobserved_weight=w0,
        regularization=reg,
        reg_exponent=1.0,
        num_user_blocks=args.blocks,
        num_item_blocks=args.blocks,
        seed=seed,
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


# --------------------------------------------------------------------------------------
# Protocol
# --------------------------------------------------------------------------------------


def tune(spark, fit_fn, grid, fit_train, validation, args, label):
    """Score every grid setting on the validation split; the results, best first."""
    results = []
    for setting in grid:
        start = time.perf_counter()
        factors = fit_fn(fit_train, setting, args.seed)
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


def run(spark, data_path: Path, args) -> dict:
    from pyspark.sql import functions as F

    from walsspark.splits import split_ratings

    ratings = read_benchmark_ratings(spark, data_path, args)
    positives = ratings.filter(F.col("rating") >= args.min_rating).select(
        "user", "item", F.lit(1.0).alias("rating")
    )
    train, test = split_ratings(positives, "user-fraction", args.test_fraction, 1, args.seed)
    train, test = train.cache(), test.cache()
    fit_train, validation = split_ratings(train, "user-fraction", 0.2, 1, args.seed + 1)
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

    regs, alphas, w0s = floats(args.regs), floats(args.alphas), floats(args.w0s)

    def wals(train_frame, setting, seed):
        reg, alpha, w0 = setting
        return fit_walsspark(spark, train_frame, args, reg, alpha, w0, seed)

    def mllib(train_frame, setting, seed):
        reg, alpha = setting
        return fit_mllib(train_frame, args, reg, alpha, seed)

    wals_grid = tune(
        spark,
        wals,
        list(itertools.product(regs, alphas, w0s)),
        fit_train,
        validation,
        args,
        "walsspark",
    )
    mllib_grid = tune(
        spark, mllib, list(itertools.product(regs, alphas)), fit_train, validation, args, "MLlib"
    )

    def test_figures(fit_fn, setting, seed):
        start = time.perf_counter()
        factors = fit_fn(train, setting, seed)
        seconds = time.perf_counter() - start
        metrics = score(spark, factors, train, test, args)
        release(factors)
        return {**metrics, "fit_seconds": seconds}

    best_wals, best_mllib = wals_grid[0]["setting"], mllib_grid[0]["setting"]
    tuned = {
        "walsspark": {"setting": best_wals, "test": test_figures(wals, best_wals, args.seed)},
        "mllib": {"setting": best_mllib, "test": test_figures(mllib, best_mllib, args.seed)},
    }
    # Equal settings: MLlib's chosen (lambda, alpha) for both, walsspark with w0 = 1.
    reg, alpha = best_mllib
    seeds = [args.seed + s for s in range(args.seeds)]
    equal = {
        "setting": {"regularization": reg, "alpha": alpha, "unobserved_weight": 1.0},
        "walsspark": [test_figures(wals, (reg, alpha, 1.0), s) for s in seeds],
        "mllib": [test_figures(mllib, (reg, alpha), s) for s in seeds],
        "seeds": seeds,
    }
    for frame in (train, test, fit_train, validation):
        frame.unpersist()
    return {
        "data": str(data_path),
        "counts": counts,
        "grid": {"regularization": regs, "alpha": alphas, "w0": w0s},
        "validation": {"walsspark": wals_grid, "mllib": mllib_grid},
        "tuned": tuned,
        "equal_settings": equal,
    }


def format_report(result: dict, args) -> str:
    k = args.k
    names = ("ndcg", "recall", "precision", "map", "hit_rate", "coverage")
    head = f"{'':<34}" + "".join(f"{n + '@' + str(k):>13}" for n in names) + f"{'fit s':>8}"
    lines = [
        f"implicit quality: {result['data']}",
        f"positives: rating >= {args.min_rating:g}; {result['counts']}",
        f"rank {args.rank}, {args.sweeps} sweeps, {args.blocks}x{args.blocks} blocks; grid "
        f"lambda {result['grid']['regularization']} x alpha {result['grid']['alpha']} "
        f"(x w0 {result['grid']['w0']} for walsspark), chosen by validation NDCG@{k}",
        "",
        head,
        "-" * len(head),
    ]

    def row(label, figures):
        return (
            f"{label:<34}"
            + "".join(f"{figures[n]:>13.4f}" for n in names)
            + f"{figures['fit_seconds']:>8.1f}"
        )

    tuned = result["tuned"]
    reg, alpha = tuned["mllib"]["setting"]
    lines.append(row(f"MLlib tuned (l={reg:g}, a={alpha:g})", tuned["mllib"]["test"]))
    reg, alpha, w0 = tuned["walsspark"]["setting"]
    lines.append(
        row(f"walsspark tuned (l={reg:g}, a={alpha:g}, w0={w0:g})", tuned["walsspark"]["test"])
    )
    for metric in HEADLINE:
        ratio = tuned["walsspark"]["test"][metric] / tuned["mllib"]["test"][metric]
        verdict = "MET" if ratio >= 1.0 else "NOT MET"
        lines.append(f"  walsspark / MLlib {metric}@{k}: {ratio:.4f} -> {verdict}")
    equal = result["equal_settings"]
    setting = equal["setting"]
    lines += [
        "",
        f"equal settings (mllib-implicit preset: w0 = 1, lambda {setting['regularization']:g}, "
        f"alpha {setting['alpha']:g}), seeds {equal['seeds']}:",
    ]
    for label in ("mllib", "walsspark"):
        for seed, figures in zip(equal["seeds"], equal[label], strict=True):
            lines.append(
                row(f"{'MLlib' if label == 'mllib' else 'walsspark'} seed {seed}", figures)
            )
    for metric in HEADLINE:
        ours = [f[metric] for f in equal["walsspark"]]
        theirs = [f[metric] for f in equal["mllib"]]
        gap = sum(ours) / len(ours) - sum(theirs) / len(theirs)
        spread = max(max(ours) - min(ours), max(theirs) - min(theirs))
        lines.append(
            f"  mean {metric}@{k} walsspark - MLlib: {gap:+.4f}; seed-to-seed spread {spread:.4f}"
        )
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
