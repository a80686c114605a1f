"""Which implicit objective forms help ranking: a driver-only study with walsspark's solver.

``bench_quality.py`` compares tuned systems end to end through Spark; this script asks a
narrower question cheaply, with no Spark: on the MovieLens positives, does a form of the
objective beat MLlib's form (w0 = 1, observed weight 1 + alpha, lambda n_i) once each is
tuned? The factors come from :func:`walsspark.solver.solve_block`, the same block solve
training runs, on the whole matrix as one block (the result does not depend on the block
count). Forms:

- ``mllib``: lambda n_i, tuned over lambda x alpha (``--lambdas`` x ``--alphas``);
- ``offset``: lambda (n_i + O) ** nu (``--reg-offset``, Rendle et al. 2022), tuned over O
  x nu x a lambda factor around the ``mllib`` winner's alpha and lambda.

Protocol: positives are the ratings >= 4; per user, 20% of them (seeded) are the test
set and 20% of the rest the validation set. Each form's winner on validation NDCG@10 is
refit on all training positives and scored once on the test set (training items
excluded). Rank 64, 15 sweeps. The split is this script's own (numpy), not the one of
``bench_quality.py``, so compare ratios within one run.

Example::

    python benchmarks/bench_objective_forms.py
    python benchmarks/bench_objective_forms.py --data ../shared/data/ml-100k/u.data
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
import numpy as np  # noqa: E402 - after the BLAS thread setting

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from walsspark.ranking import per_user_metrics  # noqa: E402
from walsspark.solver import CsrBlock, ObjectiveWeights, gramian, solve_block  # noqa: E402
from walsspark.topk import top_k  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="MLlib's implicit objective against lambda (n_i + O)^nu, each tuned on a "
        "validation split and scored once on the test split (numpy, walsspark's solver).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", default="../shared/data/ml-1m/ratings.parquet")
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--sweeps", type=int, default=15)
    parser.add_argument("--lambdas", default="0.1,0.3,1", help="the mllib form's lambda grid")
    parser.add_argument("--alphas", default="1,3,10", help="the mllib form's alpha grid")
    parser.add_argument("--offsets", default="30,100,300", help="O of the offset form")
    parser.add_argument("--exponents", default="1", help="nu of the offset form")
    parser.add_argument(
        "--lambda-factors",
        default="0.7,1,1.4",
        help="the offset form's lambda: these factors x the mllib winner's lambda x "
        "(mean n) / (mean n + O), so that lambda_i stays near the winner's at mean n",
    )
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def read_positives(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) indices, 0-based, of the ratings >= 4 of ML-1M Parquet or ML-100K u.data."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["user_id", "item_id", "rating"])
        users, items, ratings = (table.column(c).to_numpy() for c in table.column_names)
    else:
        data = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2))
        users, items, ratings = data[:, 0], data[:, 1], data[:, 2]
    keep = ratings >= 4
    _, users = np.unique(users[keep], return_inverse=True)
    _, items = np.unique(items[keep], return_inverse=True)
    return users, items


def split_per_user(users, items, fraction, rng):
    """(kept, held out): per user, floor(fraction x n_u) positives drawn at random held out."""
    order = rng.permutation(len(users))
    order = order[np.argsort(users[order], kind="stable")]
    users, items = users[order], items[order]
    starts = np.flatnonzero(np.r_[True, np.diff(users) != 0])
    counts = np.diff(np.r_[starts, len(users)])
    position = np.arange(len(users)) - np.repeat(starts, counts)
    held = position < np.repeat(np.floor(counts * fraction).astype(int), counts)
    return (users[~held], items[~held]), (users[held], items[held])


def csr(rows, cols, n_rows) -> CsrBlock:
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    ones = np.ones(len(rows), dtype=np.float32)
    return CsrBlock(indptr, cols[order].astype(np.int32), ones, confidences=ones)


def fit(pairs, shape, rank, sweeps, alpha, lam, nu, offset, seed):
    """User and item factors of the implicit objective: W = 1 + alpha on positives, 1 off."""
    rows, cols = pairs
    by_user, by_item = csr(rows, cols, shape[0]), csr(cols, rows, shape[1])
    weights = ObjectiveWeights(1.0, lam, nu, row_weight=alpha, reg_offset=offset)
    items = np.random.default_rng(seed).normal(0, 1 / np.sqrt(rank), (shape[1], rank))
    items = items.astype(np.float32)
    for _ in range(sweeps):
        users = solve_block(by_user, items, gramian(items), weights).factors.astype(np.float32)
        items = solve_block(by_item, users, gramian(users), weights.swapped()).factors
        items = items.astype(np.float32)
    return users, items


def ndcg_at(users, items, train, held, k=10) -> float:
    """Mean NDCG@k over the users with held-out positives, their training items excluded
    (:func:`walsspark.topk.top_k`, :func:`walsspark.ranking.per_user_metrics`)."""
    exclude = csr(*train, users.shape[0])
    top, _, _ = top_k(users, items, k, exclude.indptr, exclude.cols)
    held_rows, held_cols = held
    num_items = items.shape[0]
    owners = np.arange(users.shape[0], dtype=np.int64)[:, None]
    hits = (top >= 0) & np.isin(owners * num_items + top, held_rows * num_items + held_cols)
    num_relevant = np.bincount(held_rows, minlength=users.shape[0])
    scored = num_relevant > 0
    return float(per_user_metrics(hits[scored], num_relevant[scored], k)["ndcg"].mean())


def described(setting: dict) -> str:
    return ", ".join(f"{name} {value:.3g}" for name, value in setting.items())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = Path(args.data)
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    if not path.exists():
        print(f"bench_objective_forms: no data at {args.data}", file=sys.stderr)
        return 2
    users, items = read_positives(path)
    shape = (int(users.max()) + 1, int(items.max()) + 1)
    train, test = split_per_user(users, items, 0.2, np.random.default_rng(args.seed))
    fit_pairs, validation = split_per_user(*train, 0.2, np.random.default_rng(args.seed + 1))
    mean_count = len(fit_pairs[0]) / len(np.unique(fit_pairs[0]))
    print(f"{path.name}: {len(users)} positives, {shape[0]} users x {shape[1]} items")

    def tune(form, settings):
        scored = []
        for setting in settings:
            start = time.perf_counter()
            u, v = fit(fit_pairs, shape, args.rank, args.sweeps, seed=args.seed, **setting)
            score = ndcg_at(u, v, fit_pairs, validation)
            scored.append((score, setting))
            print(f"  {form:6} {described(setting)}: validation NDCG@10 {score:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
        best_score, best = max(scored, key=lambda pair: pair[0])
        u, v = fit(train, shape, args.rank, args.sweeps, seed=args.seed, **best)
        return best, best_score, ndcg_at(u, v, train, test)

    mllib = [
        dict(alpha=a, lam=lam, nu=1.0, offset=0.0)
        for lam, a in itertools.product(floats(args.lambdas), floats(args.alphas))
    ]
    base, base_val, base_test = tune("mllib", mllib)
    offset_settings = [
        dict(
            alpha=base["alpha"],
            lam=base["lam"] * factor * mean_count / (mean_count + offset) ** nu,
            nu=nu,
            offset=offset,
        )
        for offset, nu, factor in itertools.product(
            floats(args.offsets), floats(args.exponents), floats(args.lambda_factors)
        )
    ]
    best, best_val, best_test = tune("offset", [base, *offset_settings])
    for form, setting, val, test_score in (
        ("mllib form ", base, base_val, base_test),
        ("offset form", best, best_val, best_test),
    ):
        print(f"{form} ({described(setting)}): validation {val:.4f}, test NDCG@10 {test_score:.4f}")
    print(f"ratio offset / mllib: validation {best_val / base_val:.3f}, "
          f"test {best_test / base_test:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
