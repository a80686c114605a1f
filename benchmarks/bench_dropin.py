"""The drop-in check: Spark's ALS example with MLlib's ALS and with WALS, side by side.

Runs ``jobs/als_example.py``'s body (the same code, only the estimator differs) in one
session, interleaved, on the embedded synthetic ratings and, when ``../shared/data`` is
there, MovieLens 100K and 1M; prints each run's test RMSE and fit time and the ratio of
the RMSEs (target: within 0.5% at the mllib-explicit setting, 20 iterations).

    python benchmarks/bench_dropin.py [--runs 2] [--reg-params 0.1,0.05] [--max-iter 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "jobs"))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from als_example import read_ratings, run_example  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SETS = {
    "synthetic": None,
    "ml-100k": DATA / "ml-100k" / "u.data",
    "ml-1m": DATA / "ml-1m" / "ratings.parquet",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--reg-params", default="0.1")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument(
        "--mllib-seeds",
        type=int,
        default=0,
        help="also fit MLlib with this many other seeds per split: its own seed-to-seed spread",
    )
    args = parser.parse_args()

    from walsspark.session import get_or_create_session

    spark = get_or_create_session(master="local[2]", app_name="bench-dropin")
    # MLlib ALS needs a checkpoint directory beyond ~15 iterations: without one its lineage
    # grows until serializing a task overflows the stack (StackOverflowError at 20).
    spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="bench-dropin-"))
    print("set        regParam  impl    run  rmse      fit s")
    summary = []
    for name in args.sets.split(","):
        path = SETS[name]
        if path is not None and not path.exists():
            print(f"{name}: {path} not found, skipped")
            continue
        ratings = read_ratings(spark, None if path is None else str(path)).cache()
        ratings.count()
        for reg_param in (float(x) for x in args.reg_params.split(",")):
            results: dict[str, list[dict]] = {"mllib": [], "wals": []}
            for run in range(args.runs):
                for impl in ("mllib", "wals"):
                    result = run_example(spark, ratings, impl, args.max_iter, reg_param, seed=run)
                    results[impl].append(result)
                    print(
                        f"{name:10s} {reg_param:<9g} {impl:6s} {run + 1:4d}  "
                        f"{result['rmse']:.5f}  {result['fit_seconds']:6.2f}"
                    )
                for model_seed in range(1, args.mllib_seeds + 1):
                    result = run_example(
                        spark, ratings, "mllib", args.max_iter, reg_param, run, model_seed
                    )
                    results.setdefault("mllib-seeds", []).append(result)
                    print(
                        f"{name:10s} {reg_param:<9g} mllib  {run + 1:4d}  "
                        f"{result['rmse']:.5f}  {result['fit_seconds']:6.2f}  seed {model_seed}"
                    )
            ratios = [
                w["rmse"] / m["rmse"]
                for w, m in zip(results["wals"], results["mllib"], strict=True)
            ]
            fits = {impl: [r["fit_seconds"] for r in rs] for impl, rs in results.items()}
            spread = ""
            if args.mllib_seeds:
                others = results["mllib-seeds"]
                per_split = args.mllib_seeds
                deviations = [
                    abs(o["rmse"] / results["mllib"][i // per_split]["rmse"] - 1)
                    for i, o in enumerate(others)
                ]
                spread = f"; MLlib other seeds vs its default: up to {max(deviations):.2%}"
            summary.append(
                f"{name:10s} regParam {reg_param:g}: RMSE WALS/MLlib per split "
                f"{', '.join(f'{r:.4f}' for r in ratios)} (max deviation "
                f"{max(abs(r - 1) for r in ratios):.2%}); fit WALS/MLlib first "
                f"{fits['wals'][0] / fits['mllib'][0]:.2f}x, median "
                f"{statistics.median(fits['wals']) / statistics.median(fits['mllib']):.2f}x"
                + spread
            )
        ratings.unpersist()
    print()
    print("\n".join(summary))


if __name__ == "__main__":
    main()
