"""Exact against conjugate-gradient block solves: fit time and final loss, one run.

Implicit feedback on the positives (ratings >= ``--min-rating``, value 1) of ``--data``,
trained with the ``mllib-implicit`` objective (w0 1, confidence alpha r, lambda n_i) by
``--solver exact`` and by ``--solver cg --cg-steps N``, interleaved ``--repeats`` times.
Prints every fit time, the medians, their ratio and each solver's final training loss.

Example::

    python benchmarks/bench_solvers.py
    python benchmarks/bench_solvers.py --cg-steps 5 --rank 128
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_train import (  # noqa: E402 - needs the path above; also puts the repo on sys.path
    _median,
    add_data_arguments,
    benchmark_session,
    read_benchmark_ratings,
    resolve_data,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fit time and final loss of the exact and the CG solver (implicit).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_data_arguments(parser)
    parser.add_argument("--min-rating", type=float, default=4.0, help="positives: rating >= this")
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--sweeps", type=int, default=15)
    parser.add_argument("--reg", type=float, default=0.2, help="lambda (scaled by n_i)")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--cg-steps", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_path = resolve_data(args.data)
    if data_path is None:
        print(f"bench_solvers: ratings not found: {args.data}", file=sys.stderr)
        return 2
    from pyspark.sql import functions as F

    from walsspark.params import WALSParams
    from walsspark.train import fit
    from walsspark.weighting import entry_weights

    spark = benchmark_session(args, "walsspark-bench-solvers")
    ratings = read_benchmark_ratings(spark, data_path, args)
    positives = ratings.filter(F.col("rating") >= args.min_rating).select(
        "user", "item", F.lit(1.0).alias("rating")
    )
    positives = positives.cache()
    count = positives.count()
    solvers = {"exact": {"solver": "exact"}, "cg": {"solver": "cg", "cg_steps": args.cg_steps}}
    runs: dict[str, list[float]] = {name: [] for name in solvers}
    losses: dict[str, float] = {}
    for repeat in range(args.repeats):
        order = list(solvers) if repeat % 2 == 0 else list(solvers)[::-1]
        for name in order:
            params = WALSParams(
                rank=args.rank,
                sweeps=args.sweeps,
                implicit_prefs=True,
                alpha=args.alpha,
                unobserved_weight=1.0,
                regularization=args.reg,
                reg_exponent=1.0,
                num_user_blocks=args.blocks,
                num_item_blocks=args.blocks,
                **solvers[name],
            ).validate()
            start = time.perf_counter()
            trained = fit(spark, entry_weights(positives, params), params)
            runs[name].append(time.perf_counter() - start)
            losses[name] = trained.history[-1].loss
            trained.release()
            print(f"  run {repeat + 1} {name}: {runs[name][-1]:.1f} s", file=sys.stderr)
    print(
        f"{data_path}: {count:,} positives, rank {args.rank}, {args.sweeps} sweeps, "
        f"lambda {args.reg} n_i, alpha {args.alpha}, w0 1, {args.blocks}x{args.blocks} blocks"
    )
    for name in solvers:
        label = name if name == "exact" else f"cg ({args.cg_steps} steps)"
        times = " / ".join(f"{t:.1f}" for t in runs[name])
        print(
            f"{label:<16} fit s {times}  median {_median(runs[name]):.1f}  "
            f"final loss {losses[name]:,.0f}"
        )
    ratio = _median(runs["cg"]) / _median(runs["exact"])
    change = losses["cg"] / losses["exact"] - 1
    print(f"cg / exact: time {ratio:.2f}x, final loss {change:+.4%}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
