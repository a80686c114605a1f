"""`walsspark split`, implicit training and `walsspark evaluate`, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from cli_assertions import assert_one_error_line
from model_files import read_metadata

from walsspark.cli import main
from walsspark.ranking import per_user_metrics

USERS, ITEMS = 12, 15


def ratings_csv(path: Path) -> str:
    """Every user rates 6-10 items; ratings 1-5, increasing timestamps."""
    rng = np.random.default_rng(11)
    lines, stamp = ["user_id,item_id,rating,ts"], 0
    for user in range(USERS):
        for item in rng.choice(ITEMS, int(rng.integers(6, 11)), replace=False):
            stamp += int(rng.integers(1, 5))
            lines.append(f"u{user},{int(item)},{int(rng.integers(1, 6))},{stamp}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def read_pairs(path: Path) -> list[tuple]:
    table = pq.read_table(str(path)).to_pylist()
    return sorted((r["user_id"], r["item_id"], r["rating"], r.get("ts")) for r in table)


def split(data: str, out: Path, *extra: str) -> int:
    return main(["split", "--input", data, "--output", str(out), "--timestamp-col", "ts", *extra])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluate")
    ratings_csv(root / "ratings.csv")
    return root


@pytest.mark.parametrize("method", ["random", "user-fraction", "leave-k-out", "time"])
def test_splits_are_reproducible_and_keep_their_promises(spark, workdir, tmp_path, method):
    data = str(workdir / "ratings.csv")
    args = ["--method", method, "--fraction", "0.3", "--k", "2", "--seed", "5"]
    assert split(data, tmp_path / "a", *args) == 0
    assert split(data, tmp_path / "b", *args) == 0
    train, test = read_pairs(tmp_path / "a" / "train"), read_pairs(tmp_path / "a" / "test")
    assert train == read_pairs(tmp_path / "b" / "train")
    assert test == read_pairs(tmp_path / "b" / "test")
    assert not {(u, i) for u, i, _, _ in train} & {(u, i) for u, i, _, _ in test}
    assert len(train) + len(test) == sum(1 for _ in open(data)) - 1
    per_user_test: dict[str, int] = {}
    for user, *_ in test:
        per_user_test[user] = per_user_test.get(user, 0) + 1
    train_users = {u for u, *_ in train}
    if method == "leave-k-out":
        assert set(per_user_test.values()) == {2} and len(per_user_test) == USERS
    if method == "user-fraction":
        assert train_users == {f"u{i}" for i in range(USERS)}  # everyone keeps ratings
        assert 0.2 < len(test) / (len(train) + len(test)) < 0.4
    if method == "time":
        assert min(t for *_, t in test) > max(t for *_, t in train)
        assert 0.2 < len(test) / (len(train) + len(test)) < 0.4


@pytest.fixture(scope="module")
def implicit_model(spark, workdir) -> Path:
    data = str(workdir / "ratings.csv")
    assert split(data, workdir / "split", "--method", "user-fraction", "--fraction", "0.3") == 0
    model = workdir / "model"
    args = ["train", "--input", str(workdir / "split" / "train"), "--output", str(model)]
    args += ["--preset", "mllib-implicit", "--alpha", "2", "--rank", "3", "--sweeps", "4"]
    assert main([*args, "--holdout-fraction", "0.2", "--regularization", "0.05"]) == 0
    return model


def test_implicit_training_records_per_sweep_holdout_metrics(implicit_model):
    metadata = read_metadata(implicit_model)
    assert metadata["params"]["implicit_prefs"] is True
    assert metadata["params"]["unobserved_weight"] == 1.0 and metadata["params"]["alpha"] == 2.0
    assert len(metadata["history"]) == 4
    for record in metadata["history"]:
        assert set(record["holdout"]) == {"rmse", "mae", "rwse", "loss"}


def test_evaluate_equals_metrics_of_the_written_recommendations(
    implicit_model, workdir, tmp_path, capsys
):
    test_dir = workdir / "split" / "test"
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(implicit_model), "--test", str(test_dir), "--k", "4"]
    assert main([*args, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    result = read_evaluation(out)
    assert "ndcg@4" in printed and "recall@4" in printed

    # The same numbers from the top-4 lists `recommend` writes and the test pairs.
    recs = tmp_path / "recs"
    assert (
        main(["recommend", "--model", str(implicit_model), "--k", "4", "--output", str(recs)]) == 0
    )
    lists = {
        r["id"]: [x["id"] for x in r["recommendations"]]
        for r in pq.read_table(str(recs)).to_pylist()
    }
    relevant: dict[str, set] = {}
    for user, item, _, _ in read_pairs(test_dir):
        if user in lists:
            relevant.setdefault(user, set()).add(item)
    users = sorted(relevant)
    hits = np.array(
        [[i < len(lists[u]) and lists[u][i] in relevant[u] for i in range(4)] for u in users]
    )
    expected = per_user_metrics(hits, np.array([len(relevant[u]) for u in users]), 4)
    metrics = result["metrics"]
    assert metrics["users"] == len(users)
    for name, values in expected.items():
        assert metrics[f"{name}@4"] == pytest.approx(float(np.mean(values)))
    shown = {i for u in users for i in lists[u]}
    num_items = read_metadata(implicit_model)["data"]["num_items"]
    assert metrics["coverage@4"] == pytest.approx(len(shown) / num_items)
    assert "rmse" not in metrics  # implicit model: ranking only
    assert result["k"] == 4


def read_evaluation(path: Path) -> dict:
    """The one JSON line of an evaluation output directory."""
    (part,) = sorted(path.glob("part-*"))
    return json.loads(part.read_text())


def _bad_cases(model: Path, workdir: Path, tmp: Path) -> dict[str, tuple[list[str], tuple]]:
    test = str(workdir / "split" / "test")
    wrong_type = tmp / "wrong.csv"
    wrong_type.write_text("user_id,item_id,rating\nu1,abc,1\n")
    existing = tmp / "exists"
    existing.mkdir()
    (existing / "part-00000.txt").write_text("{}\n")
    data = str(workdir / "ratings.csv")
    return {
        "k below 1": (["evaluate", "--model", str(model), "--test", test, "--k", "0"], ("k",)),
        "test missing": (
            ["evaluate", "--model", str(model), "--test", str(tmp / "none.csv")],
            ("test ratings not found",),
        ),
        "test id types": (
            ["evaluate", "--model", str(model), "--test", str(wrong_type)],
            ("item ids", "string", "bigint"),
        ),
        "output exists": (
            ["evaluate", "--model", str(model), "--test", test, "--output", str(existing)],
            ("exists", "--overwrite"),
        ),
        "time split without timestamps": (
            ["split", "--input", data, "--output", str(tmp / "s"), "--method", "time"],
            ("timestamp column",),
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "k below 1",
        "test missing",
        "test id types",
        "output exists",
        "time split without timestamps",
    ],
)
def test_bad_input_one_line_exit_2(implicit_model, workdir, tmp_path, capsys, name):
    args, expected = _bad_cases(implicit_model, workdir, tmp_path)[name]
    before = sorted(p.name for p in tmp_path.iterdir())
    status = main(args)
    assert_one_error_line(status, capsys.readouterr(), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (Path(str(implicit_model) + "-evaluation")).exists()


def test_unknown_test_ids_are_counted_as_cold(implicit_model, workdir, tmp_path, capsys):
    test = pq.read_table(str(workdir / "split" / "test")).to_pylist()
    rows = [f"{r['user_id']},{r['item_id']},{r['rating']}" for r in test]
    rows += ["stranger,1,5", "stranger,2,4", "u1,999,5"]  # an unknown user, an unknown item
    path = tmp_path / "test.csv"
    path.write_text("user_id,item_id,rating\n" + "\n".join(rows) + "\n")
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(implicit_model), "--test", str(path), "--k", "3"]
    assert main([*args, "--output", str(out)]) == 0
    assert "3 cold" in capsys.readouterr().out
    result = read_evaluation(out)
    assert result["cold_ratings"] == 3 and result["cold_users"] == 1
    assert result["scored_ratings"] == len(test)


def test_evaluate_merges_repeated_test_pairs(implicit_model, workdir, tmp_path):
    test = pq.read_table(str(workdir / "split" / "test")).to_pylist()
    once, twice = tmp_path / "once.csv", tmp_path / "twice.csv"
    lines = [f"{r['user_id']},{r['item_id']},{r['rating']}" for r in test]
    once.write_text("user_id,item_id,rating\n" + "\n".join(lines) + "\n")
    twice.write_text("user_id,item_id,rating\n" + "\n".join(lines + lines) + "\n")
    results = []
    for path in (once, twice):
        out = tmp_path / f"{path.stem}-evaluation"
        args = ["evaluate", "--model", str(implicit_model), "--test", str(path), "--k", "3"]
        assert main([*args, "--output", str(out)]) == 0
        results.append(read_evaluation(out))
    assert results[0]["metrics"] == results[1]["metrics"]
    assert results[0]["scored_ratings"] == results[1]["scored_ratings"] == len(test)


def test_the_rating_column_can_be_the_weight_column(workdir, tmp_path, capsys):
    args = ["train", "--input", str(workdir / "ratings.csv"), "--output", str(tmp_path / "m")]
    args += ["--implicit", "--weight-col", "rating", "--rank", "2", "--sweeps", "1"]
    assert main([*args, "--holdout-fraction", "0"]) == 0
    assert "model written to" in capsys.readouterr().out
    metadata = read_metadata(tmp_path / "m")
    assert metadata["params"]["weight_col"] == "rating"
