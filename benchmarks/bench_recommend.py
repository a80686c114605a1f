"""Top-K for all users and all items: walsspark against Spark MLlib ALS, one run.

Both models are trained once (walsspark with ``unobserved_weight=0`` and ``reg_exponent=1``,
MLlib ALS explicit; same rank, sweeps/``maxIter``, lambda and 2 x 2 blocks) on the same
training split, their factor tables are cached and counted, and only the top-K is timed:

- ``MLlib users``: ``model.recommendForAllUsers(K)`` (no exclusion of rated items);
- ``walsspark users, excl.``: :func:`walsspark.recommend.recommend_from_blocks` of the
  cached training blocks (factors and training pairs, cached like MLlib's factor tables; what
  ``walsspark train --recommend-k`` scores), excluding every (user, item) pair of the
  training split;
- ``walsspark users, excl. disk``: what ``walsspark recommend --model DIR`` runs: load the
  model and read its saved blocks from disk (Parquet), then the same;
- ``walsspark users, excl. pairs``: :func:`walsspark.recommend.recommend` of the cached
  user factor table against the item factor table, the training pairs given as a
  DataFrame to exclude (``recommend --ratings PATH``, or a model without saved blocks);
- ``walsspark users``: the factor tables without exclusion (the like-for-like comparison);
- ``MLlib items``: ``model.recommendForAllItems(K)``;
- ``walsspark items ...``: the same three with the roles swapped (item factors as queries,
  user factors as candidates).

Every result is forced by writing it to Spark's ``noop`` sink (all rows and columns are
computed, nothing is stored). Runs are interleaved (the method order reverses on every
repeat) so machine noise hits all methods; the first run of each method is marked as the
warm-up. A ForeignCpuMonitor (from ``bench_train``) records the CPU time other processes
took during each timed run.

Untimed checks afterwards: walsspark's top-K (with and without exclusion, both directions)
equals a numpy brute force over the collected factors for a sample of ids; MLlib's top-K
equals a brute force over MLlib's own factors; the mean overlap between walsspark's and
MLlib's top-K (different models, so informational only). For scale, the driver also times
the whole users x items x rank product (the physical floor of the work) and
:func:`walsspark.topk.top_k` over all users, single-threaded, in-process.

Example::

    python benchmarks/bench_recommend.py                  # ML-1M, defaults below
    python benchmarks/bench_recommend.py --data ../shared/data/ml-100k/u.data --repeats 5
    python benchmarks/bench_recommend.py --json out/bench_recommend.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:  # bench_train sits next to this file
    sys.path.insert(0, str(BENCH_DIR))

from bench_train import (  # noqa: E402 - needs the path above; also puts the repo on sys.path
    ALTERNATIVE_DATA,
    DEFAULT_DATA,
    DEFAULT_REG,
    ForeignCpuMonitor,
    _median,
    add_data_arguments,
    benchmark_session,
    contention_warning,
    mllib_blas,
    read_benchmark_ratings,
    release,
    resolve_data,
)

# (key, label, direction, reference key for the ratio or None)
METHODS = [
    ("mllib_users", "MLlib users", "users", None),
    ("wals_users_blocks", "walsspark users, excl.", "users", "mllib_users"),
    ("wals_users_model", "walsspark users, excl. disk", "users", "mllib_users"),
    ("wals_users_seen", "walsspark users, excl. pairs", "users", "mllib_users"),
    ("wals_users", "walsspark users", "users", "mllib_users"),
    ("mllib_items", "MLlib items", "items", None),
    ("wals_items", "walsspark items", "items", "mllib_items"),
    ("wals_items_seen", "walsspark items, excl. pairs", "items", "mllib_items"),
    ("wals_items_model", "walsspark items, excl. disk", "items", "mllib_items"),
    ("wals_items_blocks", "walsspark items, excl.", "items", "mllib_items"),
]
LABELS = {key: label for key, label, _, _ in METHODS}
# The goal: walsspark's top-K with exclusion in at most this fraction of MLlib's time.
TARGET_RATIO = 0.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Train walsspark and Spark MLlib ALS once on the same split, then time the top-K "
            "for all users and for all items of both (median over interleaved repeats) and "
            "print the ratios and correctness checks."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_data_arguments(parser)
    parser.add_argument("-k", "--k", type=int, default=10, help="recommendations per id")
    parser.add_argument("--rank", type=int, default=64, help="number of latent factors")
    parser.add_argument(
        "--sweeps", type=int, default=5, help="training sweeps (MLlib maxIter); not timed"
    )
    parser.add_argument(
        "--reg", type=float, default=DEFAULT_REG, help="lambda (MLlib regParam, ALS-WR scaled)"
    )
    parser.add_argument("--holdout", type=float, default=0.2, help="holdout fraction")
    parser.add_argument("--seed", type=int, default=42, help="split and initialization seed")
    parser.add_argument(
        "--blocks", type=int, default=2, help="training user blocks = item blocks, both methods"
    )
    parser.add_argument(
        "--query-blocks",
        type=int,
        default=None,
        help="walsspark num_query_blocks (default: the library's, Spark's shuffle partitions)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method")
    parser.add_argument(
        "--check-ids", type=int, default=50, help="ids per direction checked by brute force"
    )
    parser.add_argument("--master", default="local[2]", help="Spark master")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this file")
    parser.add_argument("--verbose", action="store_true", help="log walsspark to stderr")
    args = parser.parse_args(argv)
    for name in ("k", "rank", "sweeps", "blocks", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.query_blocks is not None and args.query_blocks < 1:
        parser.error("--query-blocks must be >= 1")
    if args.check_ids < 0:
        parser.error("--check-ids must be >= 0")
    if not 0.0 < args.holdout < 1.0:
        parser.error("--holdout must be in (0, 1)")
    return args


# --------------------------------------------------------------------------------------
# Timed runs
# --------------------------------------------------------------------------------------


def force(df) -> None:
    """Compute every row and column of ``df`` and discard it (Spark's noop sink)."""
    df.write.format("noop").mode("overwrite").save()


def timed(build, monitor) -> dict:
    """Build the top-K DataFrame and force it; wall time and other processes' CPU time."""
    foreign = monitor.seconds()
    start = time.perf_counter()
    force(build())
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "foreign_cpu_seconds": monitor.seconds() - foreign}


def builders(spark, model, wals, args) -> dict:
    """method key -> zero-argument function returning that method's (lazy) top-K frame."""
    from walsspark.model import SavedModel
    from walsspark.recommend import recommend, recommend_from_blocks

    users, items = wals["users"], wals["items"]
    seen_users, seen_items = wals["seen_users"], wals["seen_items"]
    k, rank, qb = args.k, args.rank, args.query_blocks

    def wals_top(query, cand, seen, num_cand):
        # num_candidates as the CLI passes it from the model's metadata (no count job).
        return lambda: recommend(
            spark, query, cand, k, rank, seen=seen, num_query_blocks=qb, num_candidates=num_cand
        )

    n_users, n_items = wals["num_users"], wals["num_items"]

    def wals_model_top(side):
        # As `walsspark recommend --model DIR` does: load the model, read its blocks.
        def build():
            saved = SavedModel.load(spark, wals["model_dir"])
            data = saved.metadata["data"]
            other = "items" if side == "users" else "users"
            return recommend_from_blocks(
                saved.factor_blocks(spark, side),
                saved.factor_blocks(spark, other),
                k,
                rank,
                num_candidates=data["num_items" if side == "users" else "num_users"],
            )

        return build

    return {
        "mllib_users": lambda: model.recommendForAllUsers(k),
        "wals_users_model": wals_model_top("users"),
        "wals_items_model": wals_model_top("items"),
        "wals_users_blocks": lambda: recommend_from_blocks(
            wals["user_blocks"], wals["item_blocks"], k, rank, num_candidates=n_items
        ),
        "wals_items_blocks": lambda: recommend_from_blocks(
            wals["item_blocks"], wals["user_blocks"], k, rank, num_candidates=n_users
        ),
        "wals_users_seen": wals_top(users, items, seen_users, n_items),
        "wals_users": wals_top(users, items, None, n_items),
        "mllib_items": lambda: model.recommendForAllItems(k),
        "wals_items": wals_top(items, users, None, n_users),
        "wals_items_seen": wals_top(items, users, seen_items, n_users),
    }


# --------------------------------------------------------------------------------------
# Training (untimed) and factor tables
# --------------------------------------------------------------------------------------


def train_mllib(train, args):
    from pyspark.ml.recommendation import ALS

    als = ALS(
        rank=args.rank,
        maxIter=args.sweeps,
        regParam=args.reg,
        numUserBlocks=args.blocks,
        numItemBlocks=args.blocks,
        implicitPrefs=False,
        nonnegative=False,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        seed=args.seed,
    )
    start = time.perf_counter()
    model = als.fit(train)
    # Cache the factor tables recommendForAllUsers/Items read (they are matched by plan).
    n_users = model.userFactors.cache().count()
    n_items = model.itemFactors.cache().count()
    return model, n_users, n_items, time.perf_counter() - start


def train_walsspark(spark, train, args) -> dict:
    from pyspark.sql import functions as F

    from walsspark.model import save_model
    from walsspark.params import WALSParams
    from walsspark.train import fit

    params = WALSParams(
        rank=args.rank,
        sweeps=args.sweeps,
        unobserved_weight=0.0,
        regularization=args.reg,
        reg_exponent=1.0,
        num_user_blocks=args.blocks,
        num_item_blocks=args.blocks,
        seed=args.seed,
    ).validate()
    start = time.perf_counter()
    trained = fit(spark, train, params)
    users = trained.user_factors().cache()
    items = trained.item_factors().cache()
    n_users, n_items = users.count(), items.count()
    seconds = time.perf_counter() - start
    # Saved as `walsspark train` saves a model (untimed), blocks included.
    model_dir = os.path.join(tempfile.mkdtemp(prefix="walsspark-bench-model-"), "model")
    data = {
        "num_users": n_users,
        "num_items": n_items,
        "num_user_blocks": trained.users.num_blocks,
        "num_item_blocks": trained.items.num_blocks,
        "user_id_type": trained.users.id_type,
        "item_id_type": trained.items.id_type,
    }
    user_blocks = trained.factor_blocks("user").cache()
    item_blocks = trained.factor_blocks("item").cache()
    user_blocks.count(), item_blocks.count()
    save_model(
        model_dir,
        users,
        items,
        {"params": params.to_dict(), "data": data},
        factor_blocks={"users": user_blocks, "items": item_blocks},
    )
    trained.release()  # the cached factor rows no longer need the rating blocks
    return {
        "params": params,
        "users": users,
        "items": items,
        "num_users": n_users,
        "num_items": n_items,
        "seconds": seconds,
        "model_dir": model_dir,
        "user_blocks": user_blocks,
        "item_blocks": item_blocks,
        # Exclusion sets: the training pairs, in both roles (train is cached).
        "seen_users": train.select(F.col("user").alias("query"), F.col("item").alias("candidate")),
        "seen_items": train.select(F.col("item").alias("query"), F.col("user").alias("candidate")),
    }


def collect_factors(df):
    """(ids, float32 matrix) of a factor table, sorted by id."""
    import numpy as np

    rows = sorted(df.select("id", "features").collect(), key=lambda r: r["id"])
    ids = np.array([r["id"] for r in rows], dtype=np.int64)
    return ids, np.array([r["features"] for r in rows], dtype=np.float32)


def collect_top(df) -> dict[int, list[int]]:
    """id -> recommended ids (in order) of a walsspark or MLlib top-K frame."""
    rec_col = "recommendations"
    value_col = None
    for field in df.schema[rec_col].dataType.elementType.fields:
        if field.name != "rating" and field.name != "score":
            value_col = field.name
    id_col = df.columns[0]
    return {
        int(row[id_col]): [int(rec[value_col]) for rec in row[rec_col]]
        for row in df.select(id_col, rec_col).collect()
    }


# --------------------------------------------------------------------------------------
# Checks (untimed)
# --------------------------------------------------------------------------------------


def brute_top(query, cand, cand_ids, k, excluded=None):
    """Top-k candidate ids by float64 score, ties by id; also the scores (numpy only)."""
    import numpy as np

    scores = cand.astype(np.float64) @ query.astype(np.float64)
    if excluded:
        mask = np.isin(cand_ids, np.fromiter(excluded, dtype=np.int64))
        scores = np.where(mask, -np.inf, scores)
    order = np.lexsort((cand_ids, -scores))[:k]
    order = order[np.isfinite(scores[order])]
    return [int(i) for i in cand_ids[order]], scores


def compare(got: dict, query_ids, query, cand_ids, cand, k, sample, seen=None) -> dict:
    """Exact agreement of ``got`` with a brute force for the sampled query ids.

    A mismatch counts as a near tie when every differing id scores within 1e-4 (relative)
    of the k-th brute-force score: float32 products summed in another order may swap them.
    """
    index = {int(q): i for i, q in enumerate(query_ids)}
    cand_index = {int(c): j for j, c in enumerate(cand_ids)}
    exact = near = 0
    worst = []
    for qid in sample:
        want, scores = brute_top(
            query[index[qid]], cand, cand_ids, k, seen.get(qid) if seen else None
        )
        have = got.get(qid, [])
        if have == want:
            exact += 1
            continue
        if len(have) == len(want) and want:
            kth = scores[cand_index[want[-1]]]
            diff = set(have) ^ set(want)
            gap = max((abs(scores[cand_index[c]] - kth) for c in diff), default=0.0)
            if set(have) == set(want) or gap <= 1e-4 * max(1.0, abs(kth)):
                near += 1
                continue
        worst.append({"id": qid, "expected": want, "got": have})
    return {
        "checked": len(sample),
        "exact": exact,
        "near_ties": near,
        "mismatches": worst[:5],
        "num_mismatches": len(worst),
        "all_match": not worst,
    }


def seen_map(train, query_col: str, cand_col: str, ids) -> dict[int, set[int]]:
    from pyspark.sql import functions as F

    wanted = [int(i) for i in ids]
    rows = (
        train.filter(F.col(query_col).isin(wanted))
        .groupBy(query_col)
        .agg(F.collect_list(cand_col).alias("seen"))
        .collect()
    )
    return {int(r[query_col]): {int(c) for c in r["seen"]} for r in rows}


def overlap(a: dict, b: dict, k: int) -> dict:
    common = a.keys() & b.keys()
    if not common:
        return {"ids": 0, "mean": math.nan}
    values = [len(set(a[i]) & set(b[i])) / k for i in common]
    return {"ids": len(common), "mean": sum(values) / len(values)}


def seen_violations(top, seen) -> int:
    """Recommended (query, candidate) pairs that are in ``seen``, over the whole result."""
    from pyspark.sql import functions as F

    recs = top.select(
        F.col("id").alias("query"), F.explode("recommendations.id").alias("candidate")
    )
    return recs.join(seen, ["query", "candidate"]).count()


def run_checks(model, wals, train, args, tops, build) -> dict:
    import numpy as np

    k = args.k
    user_ids, U = collect_factors(wals["users"])
    item_ids, V = collect_factors(wals["items"])
    m_user_ids, MU = collect_factors(model.userFactors)
    m_item_ids, MV = collect_factors(model.itemFactors)
    rng = np.random.default_rng(args.seed)
    users = sorted(int(i) for i in rng.choice(user_ids, min(args.check_ids, len(user_ids)), False))
    items = sorted(int(i) for i in rng.choice(item_ids, min(args.check_ids, len(item_ids)), False))
    seen_u = seen_map(train, "user", "item", users)
    seen_i = seen_map(train, "item", "user", items)

    checks = {
        "walsspark users vs brute force": compare(
            tops["wals_users"], user_ids, U, item_ids, V, k, users
        ),
        "walsspark users excl. vs brute force": compare(
            tops["wals_users_blocks"], user_ids, U, item_ids, V, k, users, seen_u
        ),
        "walsspark users excl. disk vs brute force": compare(
            tops["wals_users_model"], user_ids, U, item_ids, V, k, users, seen_u
        ),
        "walsspark users excl. pairs vs brute force": compare(
            tops["wals_users_seen"], user_ids, U, item_ids, V, k, users, seen_u
        ),
        "walsspark items vs brute force": compare(
            tops["wals_items"], item_ids, V, user_ids, U, k, items
        ),
        "walsspark items excl. vs brute force": compare(
            tops["wals_items_blocks"], item_ids, V, user_ids, U, k, items, seen_i
        ),
        "walsspark items excl. disk vs brute force": compare(
            tops["wals_items_model"], item_ids, V, user_ids, U, k, items, seen_i
        ),
        "walsspark items excl. pairs vs brute force": compare(
            tops["wals_items_seen"], item_ids, V, user_ids, U, k, items, seen_i
        ),
        "MLlib users vs brute force (MLlib factors)": compare(
            tops["mllib_users"], m_user_ids, MU, m_item_ids, MV, k, users
        ),
        "MLlib items vs brute force (MLlib factors)": compare(
            tops["mllib_items"], m_item_ids, MV, m_user_ids, MU, k, items
        ),
    }
    # Rows and lengths of the full results.
    shape = {}
    for key, top in tops.items():
        lengths = [len(v) for v in top.values()]
        shape[key] = {"rows": len(top), "min_len": min(lengths), "max_len": max(lengths)}
    return {
        "seen_in_excluded_results": {
            "users": seen_violations(build["wals_users_blocks"](), wals["seen_users"])
            + seen_violations(build["wals_users_model"](), wals["seen_users"])
            + seen_violations(build["wals_users_seen"](), wals["seen_users"]),
            "items": seen_violations(build["wals_items_blocks"](), wals["seen_items"])
            + seen_violations(build["wals_items_model"](), wals["seen_items"])
            + seen_violations(build["wals_items_seen"](), wals["seen_items"]),
        },
        "brute_force": checks,
        "shapes": shape,
        "overlap_users": overlap(tops["wals_users"], tops["mllib_users"], k),
        "overlap_items": overlap(tops["wals_items"], tops["mllib_items"], k),
        "overlap_users_excl_vs_mllib": overlap(tops["wals_users_seen"], tops["mllib_users"], k),
        "floor": driver_floor(U, V, k),
    }


def driver_floor(U, V, k) -> dict:
    """In-process, single BLAS thread: the full U V^T product and walsspark's top_k."""
    import numpy as np

    from walsspark.topk import top_k

    def best_of(fn, times=3):
        best = math.inf
        for _ in range(times):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        return best

    VT = np.ascontiguousarray(V.T)
    gemm = best_of(lambda: U @ VT)
    topk_users = best_of(lambda: top_k(U, V, k))
    topk_items = best_of(lambda: top_k(V, U, k))
    return {
        "gflop": 2.0 * U.shape[0] * V.shape[0] * U.shape[1] / 1e9,
        "gemm_seconds": gemm,
        "topk_users_seconds": topk_users,
        "topk_items_seconds": topk_items,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def summarize(runs: dict[str, list[dict]]) -> dict:
    out = {}
    for key, method_runs in runs.items():
        times = [r["seconds"] for r in method_runs]
        out[key] = {
            "seconds": times,
            "median": _median(times),
            "median_excluding_warmup": _median(times[1:]),
            "min": min(times),
        }
    return out


def ratios(times: dict, runs: dict) -> dict:
    out = {}
    for key, _, _, ref in METHODS:
        if ref is None:
            continue
        t, r = times[key], times[ref]
        out[key] = {
            "reference": ref,
            "per_run": [
                a["seconds"] / b["seconds"] for a, b in zip(runs[key], runs[ref], strict=True)
            ],
            "median": t["median"] / r["median"],
            "median_excluding_warmup": (
                t["median_excluding_warmup"] / r["median_excluding_warmup"]
                if len(t["seconds"]) > 1
                else math.nan
            ),
            "min": t["min"] / r["min"],
        }
    return out


def format_report(result: dict) -> str:
    cfg, data, env = result["config"], result["data"], result["environment"]
    times, ratio = result["times"], result["ratios"]
    repeats = cfg["repeats"]
    lines = [
        f"top-{cfg['k']} for all users / all items: walsspark vs Spark MLlib ALS",
        f"data     {data['path']}",
        f"ratings  {data['ratings']:,} (train {data['train']:,} = the exclusion pairs); "
        f"factors: users {data['num_users']:,}, items {data['num_items']:,} (walsspark), "
        f"{data['mllib_num_users']:,} / {data['mllib_num_items']:,} (MLlib)",
        f"params   k={cfg['k']} rank={cfg['rank']} sweeps={cfg['sweeps']} lambda={cfg['reg']} "
        f"train blocks={cfg['blocks']}x{cfg['blocks']} query blocks="
        f"{cfg['query_blocks'] or 'default'} master={cfg['master']}",
        f"         {repeats} interleaved runs per method (order reverses every repeat); "
        "timed: build + force to the noop sink; factor tables cached beforehand",
        f"env      {env['cpu_count']} CPUs, pyspark {env['pyspark']}, Python {env['python']}, "
        f"MLlib BLAS/LAPACK: {env['mllib_blas']}",
        f"training (untimed) MLlib {result['training']['mllib_seconds']:.1f} s, walsspark "
        f"{result['training']['walsspark_seconds']:.1f} s",
        "",
    ]
    name_w = 31
    run_heads = [f"run {i + 1}{'*' if i == 0 else ''}" for i in range(repeats)]
    head = (
        f"{'top-K seconds':<{name_w}}"
        + "".join(f"{h:>9}" for h in run_heads)
        + f"{'median':>9}{'med excl*':>11}{'min':>9}"
    )
    lines += [head, "-" * len(head)]

    def row(label, values, med, med_excl, low, fmt=".2f"):
        return (
            f"{label:<{name_w}}"
            + "".join(f"{v:>9{fmt}}" for v in values)
            + f"{med:>9{fmt}}{med_excl:>11{fmt}}{low:>9{fmt}}"
        )

    for direction in ("users", "items"):
        for key, label, d, _ in METHODS:
            if d != direction:
                continue
            t = times[key]
            lines.append(
                row(label, t["seconds"], t["median"], t["median_excluding_warmup"], t["min"])
            )
        for key, label, d, ref in METHODS:
            if d != direction or ref is None:
                continue
            r = ratio[key]
            lines.append(
                row(
                    f"  ratio {label.removeprefix('walsspark ')}",
                    r["per_run"],
                    r["median"],
                    r["median_excluding_warmup"],
                    r["min"],
                )
            )
        lines.append("")
    foreign_lines = []
    for key, label, _, _ in METHODS:
        foreign = [r.get("foreign_cpu_seconds", math.nan) for r in result["runs"][key]]
        if not all(math.isnan(f) for f in foreign):
            foreign_lines.append(
                f"{'  ' + label:<{name_w}}" + "".join(f"{f:>9.1f}" for f in foreign)
            )
    if foreign_lines:
        lines += ["other processes' CPU s during each run:", *foreign_lines]
    lines.append(
        "* run 1 is the warm-up (first run of each method in this session); it counts in "
        "'median'. Ratio rows: walsspark / MLlib of the same direction, per run, then "
        "ratio of medians / of mins."
    )
    lines.append("  run order: " + " | ".join(", ".join(o) for o in result["run_order"]))

    target = ratio["wals_users_blocks"]
    headline = target["median_excluding_warmup"]
    if math.isnan(headline):
        headline = target["median"]
    verdict = "MET" if headline <= TARGET_RATIO else "NOT MET"
    lines += [
        "",
        f"target: walsspark users with exclusion <= {TARGET_RATIO}x MLlib recommendForAllUsers: "
        f"{headline:.2f}x -> {verdict}",
    ]

    checks = result["checks"]
    lines += ["", "checks (untimed)"]
    for name, check in checks["brute_force"].items():
        status = "OK" if check["all_match"] else "MISMATCH"
        lines.append(
            f"  {name:<48} {status}: {check['exact']}/{check['checked']} exact"
            + (f", {check['near_ties']} near ties" if check["near_ties"] else "")
            + (f", {check['num_mismatches']} wrong" if check["num_mismatches"] else "")
        )
        for bad in check["mismatches"][:2]:
            lines.append(f"      id {bad['id']}: expected {bad['expected']}, got {bad['got']}")
    shape = ", ".join(
        f"{LABELS[key]} {s['rows']:,} rows x {s['min_len']}..{s['max_len']}"
        for key, s in checks["shapes"].items()
    )
    lines.append(f"  result shapes: {shape}")
    violations = checks["seen_in_excluded_results"]
    lines.append(
        f"  training pairs recommended despite exclusion (whole results): users "
        f"{violations['users']}, items {violations['items']}"
    )
    ou, oi, ox = (
        checks["overlap_users"],
        checks["overlap_items"],
        checks["overlap_users_excl_vs_mllib"],
    )
    lines.append(
        f"  mean top-{cfg['k']} overlap walsspark vs MLlib (different models, informational): "
        f"users {ou['mean']:.3f} ({ou['ids']:,} ids), items {oi['mean']:.3f} "
        f"({oi['ids']:,} ids); walsspark excl. vs MLlib users {ox['mean']:.3f}"
    )
    floor = checks["floor"]
    lines += [
        "",
        f"floor (driver, numpy, OPENBLAS_NUM_THREADS={floor['blas_threads']}, best of 3): "
        f"U V^T {floor['gflop']:.2f} GFLOP in {floor['gemm_seconds']:.3f} s "
        f"({floor['gflop'] / floor['gemm_seconds']:.0f} GFLOP/s); walsspark.topk.top_k all "
        f"users {floor['topk_users_seconds']:.3f} s, all items {floor['topk_items_seconds']:.3f} s",
    ]
    lines += contention_warning(
        {LABELS[key]: result["runs"][key] for key, _, _, _ in METHODS}, min_seconds=0.5
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_path = resolve_data(args.data)
    if data_path is None:
        print(
            f"bench_recommend: ratings not found: {args.data}. Expected ML-1M at "
            f"{DEFAULT_DATA} or ML-100k at {ALTERNATIVE_DATA} relative to the repository "
            "root; pass --data PATH.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    spark = benchmark_session(args, "walsspark-bench-recommend")

    from walsspark.splits import split_holdout

    ratings = read_benchmark_ratings(spark, data_path, args)
    train, holdout = split_holdout(ratings, args.holdout, args.seed)
    train = train.cache()
    n_train, n_holdout = train.count(), holdout.count()

    print("training MLlib ALS ...", file=sys.stderr, flush=True)
    model, m_users, m_items, mllib_seconds = train_mllib(train, args)
    print("training walsspark ...", file=sys.stderr, flush=True)
    wals = train_walsspark(spark, train, args)
    build = builders(spark, model, wals, args)

    monitor = ForeignCpuMonitor().start()
    keys = [key for key, _, _, _ in METHODS]
    runs: dict[str, list[dict]] = {key: [] for key in keys}
    run_order: list[list[str]] = []
    for repeat in range(args.repeats):
        order = keys if repeat % 2 == 0 else keys[::-1]
        run_order.append(list(order))
        for key in order:
            release(spark)
            outcome = timed(build[key], monitor)
            runs[key].append(outcome)
            print(
                f"  run {repeat + 1}/{args.repeats} {LABELS[key]:<24} "
                f"{outcome['seconds']:7.2f} s  (other processes "
                f"{outcome['foreign_cpu_seconds']:.1f} CPU s)",
                file=sys.stderr,
                flush=True,
            )
    monitor.stop()

    print("checking results ...", file=sys.stderr, flush=True)
    tops = {key: collect_top(build[key]()) for key in keys}
    checks = run_checks(model, wals, train, args, tops, build)

    times = summarize(runs)
    result = {
        "config": {
            "data": args.data,
            "k": args.k,
            "rank": args.rank,
            "sweeps": args.sweeps,
            "reg": args.reg,
            "holdout": args.holdout,
            "seed": args.seed,
            "blocks": args.blocks,
            "query_blocks": args.query_blocks,
            "repeats": args.repeats,
            "master": args.master,
            "walsspark_params": wals["params"].to_dict(),
        },
        "environment": {
            "python": platform.python_version(),
            "pyspark": spark.version,
            "cpu_count": os.cpu_count(),
            "mllib_blas": mllib_blas(spark),
            "platform": platform.platform(),
            "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        },
        "data": {
            "path": str(data_path),
            "ratings": n_train + n_holdout,
            "train": n_train,
            "holdout": n_holdout,
            "num_users": wals["num_users"],
            "num_items": wals["num_items"],
            "mllib_num_users": m_users,
            "mllib_num_items": m_items,
        },
        "training": {"mllib_seconds": mllib_seconds, "walsspark_seconds": wals["seconds"]},
        "run_order": run_order,
        "runs": runs,
        "times": times,
        "ratios": ratios(times, runs),
        "checks": checks,
    }
    print(format_report(result))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nwrote {out}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
