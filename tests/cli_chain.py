"""The whole command chain of a user, against one directory on any file system.

``write_chain_inputs`` writes the inputs into a local directory (the one behind a viewfs
mount); ``run_chain`` runs split, train (with its recommendation tables), recommend (users
and items, Parquet and CSV), evaluate and project through ``walsspark.cli.main``, then the
error cases, with every path under ``prefix`` (a viewfs URI, or a scheme-less path that
the default file system resolves). ``read_chain_outputs`` reads what it wrote back from
the local directory, for comparison between runs (classic, Connect, ...).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq

from walsspark.cli import main
from walsspark.synthetic import synthetic_ratings

MODEL_ARGS = [
    "--rank", "3", "--sweeps", "3", "--holdout-fraction", "0", "--seed", "5",
    "--num-user-blocks", "2", "--num-item-blocks", "2",
    "--unobserved-weight", "0", "--reg-exponent", "1",
]  # fmt: skip


def write_chain_inputs(root: Path) -> None:
    """``ratings.csv`` (small synthetic stars) and ``new.csv`` (two new users)."""
    table = synthetic_ratings(num_users=60, num_items=40, mean_ratings_per_user=8, seed=3)
    rows = table.to_pylist()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "ratings.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        writer.writerows([r["user_id"], r["item_id"], r["rating"], r["timestamp"]] for r in rows)
    items = sorted({r["item_id"] for r in rows})
    with open(root / "new.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating"])
        writer.writerows([[9001, item, 5.0] for item in items[:4]])
        writer.writerows([[9002, item, 2.0] for item in items[2:8]])


def _run(argv: list[str], conf: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main([*conf, *argv])
    return status, err.getvalue()


def run_chain(prefix: str, conf: list[str] | None = None) -> dict:
    """Every command of the chain; the exit status and stderr of each."""
    conf = conf or []
    p = prefix.rstrip("/")
    steps = {
        "split": ["split", "--input", f"{p}/ratings.csv", "--output", f"{p}/split",
                  "--method", "user-fraction", "--fraction", "0.25", "--seed", "1"],
        "train": ["train", "--input", f"{p}/split/train", "--output", f"{p}/model", *MODEL_ARGS,
                  "--recommend-k", "3", "--recommendations", f"{p}/train-recs"],
        "users parquet": ["recommend", "--model", f"{p}/model", "--k", "4",
                          "--output", f"{p}/recs-users"],
        "users csv": ["recommend", "--model", f"{p}/model", "--k", "4", "--format", "csv",
                      "--output", f"{p}/recs-users-csv"],
        "items parquet": ["recommend", "--model", f"{p}/model", "--k", "4", "--for", "items",
                          "--output", f"{p}/recs-items"],
        "items csv": ["recommend", "--model", f"{p}/model", "--k", "4", "--for", "items",
                      "--format", "csv", "--output", f"{p}/recs-items-csv"],
        "evaluate": ["evaluate", "--model", f"{p}/model", "--test", f"{p}/split/test",
                     "--k", "4", "--output", f"{p}/evaluation"],
        "project": ["project", "--model", f"{p}/model", "--input", f"{p}/new.csv",
                    "--output", f"{p}/projected", "--k", "3"],
        # Bad input: one line, exit status 2, nothing written.
        "missing input": ["train", "--input", f"{p}/missing.csv", "--output", f"{p}/model2",
                          *MODEL_ARGS],
        "existing output": ["train", "--input", f"{p}/split/train", "--output", f"{p}/model",
                            *MODEL_ARGS],
        "missing model": ["recommend", "--model", f"{p}/no-model", "--k", "2",
                          "--output", f"{p}/recs-none"],
        "existing evaluation": ["evaluate", "--model", f"{p}/model", "--test",
                                f"{p}/split/test", "--output", f"{p}/evaluation"],
    }  # fmt: skip
    results = {}
    for name, argv in steps.items():
        status, err = _run(argv, conf)
        results[name] = {"status": status, "stderr": err}
    return results


def _recommendation_lists(path: Path) -> dict:
    return {
        str(row["id"]): [x["id"] for x in row["recommendations"]]
        for row in pq.read_table(str(path)).to_pylist()
    }


def _csv_lines(path: Path) -> list[str]:
    lines = []
    for part in sorted(path.glob("part-*")):
        lines += [line for line in part.read_text().splitlines() if line]
    return sorted(lines)


def _factors(path: Path) -> dict:
    return {str(row["id"]): row["features"] for row in pq.read_table(str(path)).to_pylist()}


def read_chain_outputs(root: Path) -> dict:
    """What the chain wrote under ``root`` (the local directory behind its prefix)."""
    (evaluation,) = sorted((root / "evaluation").glob("part-*"))
    split = {name: pq.read_table(str(root / "split" / name)).num_rows for name in ("train", "test")}
    return {
        "split": split,
        "user_factors": _factors(root / "model" / "user_factors"),
        "item_factors": _factors(root / "model" / "item_factors"),
        "train_recs_users": _recommendation_lists(root / "train-recs" / "users"),
        "train_recs_items": _recommendation_lists(root / "train-recs" / "items"),
        "users": _recommendation_lists(root / "recs-users"),
        "items": _recommendation_lists(root / "recs-items"),
        "users_csv": _csv_lines(root / "recs-users-csv"),
        "items_csv": _csv_lines(root / "recs-items-csv"),
        "evaluation": json.loads(evaluation.read_text())["metrics"],
        "projected": _factors(root / "projected" / "factors"),
        "projected_recs": _recommendation_lists(root / "projected" / "recommendations"),
    }  # fmt: skip
