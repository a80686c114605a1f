"""`walsspark tune`: the search (plain Python), its bad input, and two small Spark runs.

The Spark runs: an implicit grid of 4 whose every trial is trained again on its own
(``train_model``, the layout not shared, alpha inside the confidences) and scored in
numpy, so the table and ``best.toml`` are checked against an answer computed apart, and
``train --config best.toml`` must give the winner back; and a halving search of the
default explicit space written to a file system only Spark sees (viewfs).
"""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pyarrow.parquet as pq
import pytest
from cli_assertions import assert_one_error_line
from conftest import VIEWFS_TABLE
from model_files import read_metadata

from walsspark.cli import build_parser, main
from walsspark.commands.tune import check_output, resolve_tune_options
from walsspark.errors import InputError
from walsspark.session import SparkSetup
from walsspark.synthetic import synthetic_ratings, write_ratings_parquet
from walsspark.tuning import (
    Dimension,
    Metric,
    halving_schedule,
    random_candidates,
    run_search,
)

# -- the search, without Spark ------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidates", "sweeps", "eta", "stages"),
    [
        (27, 10, 3, [(27, 1), (9, 3), (3, 10)]),
        (20, 10, 3, [(20, 1), (6, 3), (2, 10)]),
        (5, 3, 3, [(5, 1), (1, 3)]),
        (2, 10, 3, [(2, 10)]),  # fewer candidates than eta: one stage
        (100, 2, 2, [(100, 1), (50, 2)]),  # few sweeps limit the stages
        (81, 100, 3, [(81, 1), (27, 4), (9, 11), (3, 33), (1, 100)]),
    ],
)
def test_halving_schedule(candidates, sweeps, eta, stages):
    assert halving_schedule(candidates, sweeps, eta) == stages
    with pytest.raises(InputError, match="eta"):
        halving_schedule(candidates, sweeps, 1)


def test_run_search_continues_the_best_of_each_stage():
    """A stub trains: the metric is known, so which candidates go on is known."""
    candidates = [{"regularization": x} for x in (0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6)]
    calls = []

    def evaluate(params, sweeps):
        calls.append((params["regularization"], sweeps))
        # Better near 0.3; more sweeps help everyone equally.
        return {"ndcg@10": 1 - abs(params["regularization"] - 0.3) + sweeps / 100}

    reported = []
    stages = halving_schedule(len(candidates), 9, 3)
    assert stages == [(9, 1), (3, 3), (1, 9)]
    trials = run_search(
        candidates, stages, evaluate, Metric("ndcg", 10), lambda *a: reported.append(a)
    )
    assert [(t.stage, t.sweeps) for t in trials] == [(1, 1)] * 9 + [(2, 3)] * 3 + [(3, 9)]
    assert [c[0] for c in calls[9:12]] == [0.3, 0.2, 0.4]  # the 3 best, best first
    assert calls[12] == (0.3, 9)
    assert [t.number for t in trials] == list(range(1, 14))
    assert len(reported) == 13 and all(planned == 13 for *_, planned in reported)
    # The best so far is the stage's (ties: the earliest): trial 4 (0.3) once it has run.
    assert [best.number for _, best, _ in reported[:5]] == [1, 1, 1, 4, 4]
    assert [best.number for _, best, _ in reported[9:12]] == [10, 10, 10]

    # rmse: lower is better; a NaN is never the best.
    def rmse(params, sweeps):
        value = params["regularization"]
        return {"rmse": math.nan if value == 0.1 else value}

    trials = run_search(candidates, halving_schedule(9, 3, 3), rmse, Metric("rmse"))
    assert [t.params["regularization"] for t in trials if t.stage == 2] == [0.2, 0.3, 0.4]


def test_random_candidates_are_seeded_and_distinct():
    space = {
        "regularization": Dimension(low=1e-3, high=10.0, log=True),
        "reg_exponent": Dimension(values=(0.0, 0.5, 1.0)),
    }
    first = random_candidates(space, 50, seed=7)
    assert first == random_candidates(space, 50, seed=7)
    assert first != random_candidates(space, 50, seed=8)
    assert all(1e-3 <= c["regularization"] <= 10 for c in first)
    assert {c["reg_exponent"] for c in first} == {0.0, 0.5, 1.0}
    # Log-uniform: about as many draws below 0.1 as above.
    assert 15 < sum(c["regularization"] < 0.1 for c in first) < 35
    lists = {"reg_exponent": Dimension(values=(0.0, 1.0)), "confidence": Dimension(("a", "b"))}
    drawn = random_candidates(lists, 3, seed=1)
    assert len({tuple(c.values()) for c in drawn}) == 3  # distinct combinations
    assert len(random_candidates(lists, 10, seed=1)) == 4  # all of them, no more


def plan(*args: str):
    argv = ["tune", "--input", "ratings.parquet", "--output", "out", *args]
    return resolve_tune_options(build_parser().parse_args(argv))


def test_help_shows_each_default_space_as_it_is(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "unobserved_col_weights {uniform, power:0.1} (implicit), {uniform, power:0.25, " in text
    assert "reg_offset {0, 30, 100, 300} (implicit);" in text
    assert "unobserved_weight {0, 0.001, 0.01, 0.1, 1} (explicit);" in text


def test_plans_fix_the_given_options_and_search_the_rest(tmp_path):
    implicit = plan("--implicit", "--trials", "7", "--seed", "3")
    assert implicit.search == "random" and len(implicit.candidates) == 7
    assert set(implicit.space) == {
        "regularization", "reg_exponent", "reg_offset", "unobserved_col_weights", "alpha",
    }  # fmt: skip
    assert implicit.base.unobserved_weight == 1.0  # fixed: only alpha / w0 matters
    assert implicit.stages == [(7, 10)]
    assert plan("--implicit", "--trials", "7", "--seed", "3").candidates == implicit.candidates

    explicit = plan("--regularization", "0.05", "--search", "halving", "--sweeps", "9")
    assert "regularization" not in explicit.space and "alpha" not in explicit.space
    assert "unobserved_weight" in explicit.space
    assert {c.get("regularization") for c in explicit.candidates} == {None}
    assert explicit.base.regularization == 0.05
    assert explicit.stages == [(20, 1), (6, 3), (2, 9)]

    # What the given options leave of the default space may be lists only: a grid of them.
    lists = plan("--implicit", "--regularization", "0.1", "--alpha", "3")
    assert lists.search == "grid" and len(lists.candidates) == 2 * 4 * 2

    # A preset fixes its settings: mllib-implicit leaves MLlib's own grid, lambda x alpha.
    mllib = plan("--preset", "mllib-implicit")
    assert set(mllib.space) == {"regularization", "alpha"}
    assert (mllib.base.reg_exponent, mllib.base.implicit_prefs) == (1.0, True)

    grid = tmp_path / "grid.toml"
    grid.write_text('alpha = [1, 10]\nunobserved-col-weights = ["uniform", "power:0.5"]\n')
    searched = plan("--implicit", "--grid", str(grid))
    assert searched.search == "grid"
    assert searched.candidates == [
        {"alpha": a, "unobserved_col_weights": w}
        for a in (1.0, 10.0)
        for w in ("uniform", "power:0.5")
    ]
    # A grid file's ranges are drawn from.
    grid.write_text("regularization = {log-uniform = [0.01, 1]}\nreg_exponent = 1\n")
    drawn = plan("--grid", str(grid), "--trials", "4")
    assert drawn.search == "random" and len(drawn.candidates) == 4
    assert all(
        0.01 <= c["regularization"] <= 1 and c["reg_exponent"] == 1 for c in drawn.candidates
    )


@pytest.mark.parametrize(
    ("grid", "args", "expected"),
    [
        ("lambda = [0.1]\n", [], ["unknown parameter 'lambda'", "searchable: regularization"]),
        ("regularization = []\n", [], ["'regularization' has an empty list"]),
        ("regularization = [0.1, -1]\n", [], ["regularization must be a finite number >= 0"]),
        ('regularization = ["a"]\n', [], ["regularization must be a number, got 'a'"]),
        ('unobserved_col_weights = ["power:x"]\n', [], ["uniform or power:E", "power:x"]),
        ('confidence = ["sqrt"]\n', ["--implicit"], ["confidence must be one of linear, log"]),
        ("alpha = [0]\n", ["--implicit"], ["alpha must be > 0"]),
        ("alpha = [1, 2]\n", [], ["alpha only acts on implicit confidences", "--implicit"]),
        ("regularization = {log-uniform = [0, 1]}\n", [], ["log-uniform range needs low > 0"]),
        ("regularization = {uniform = [2, 1]}\n", [], ["range needs low < high"]),
        ("regularization = {normal = [0, 1]}\n", [], ["must be a list of values, {uniform"]),
        ("confidence = {uniform = [0, 1]}\n", ["--implicit"], ["takes a list of values"]),
        ("regularization = {uniform = [0.1, 1]}\n", ["--search", "grid"], ["is a range"]),
        ("regularization = [0.1\n", [], ["cannot read grid file"]),
        ("", [], ["names no parameter to search"]),
        ("regularization = [0.1]\n", ["--regularization", "1"], ["both fixed", "drop one"]),
        ("regularization = [0, 1]\nunobserved_weight = [0]\n", [], ["cannot both be 0"]),
        ("regularization = [0.1]\n", ["--trials", "3"], ["--trials is for --search random"]),
        (None, ["--metric", "ndcg"], ["metric must be rmse or one of"]),
        (None, ["--validation", "user-fraction:1.5"], ["validation fraction must be in (0, 1)"]),
        (None, ["--eta", "1"], ["eta must be an integer >= 2"]),
        (None, ["--search", "grid"], ["--search grid needs --grid FILE.toml"]),
        (None, ["--validation", "time:0.2"], ["needs a timestamp column", "--timestamp-col"]),
        (
            None,
            [
                "--implicit",
                "--alpha",
                "1",
                "--regularization",
                "1",
                "--reg-exponent",
                "0",
                "--reg-offset",
                "0",
                "--unobserved-col-weights",
                "uniform",
                "--confidence",
                "log",
            ],
            ["nothing to search"],
        ),
    ],
)
def test_bad_grids_and_options_give_one_line_and_no_output(tmp_path, capsys, grid, args, expected):
    data = tmp_path / "ratings.csv"
    data.write_text("user_id,item_id,rating\n1,10,4.0\n2,11,3.0\n")
    argv = ["tune", "--input", str(data), "--output", str(tmp_path / "out"), *args]
    if grid is not None:
        (tmp_path / "grid.toml").write_text(grid)
        argv += ["--grid", str(tmp_path / "grid.toml")]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_one_error_line(main(argv), capsys.readouterr(), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_only_a_tune_output_is_overwritten(tmp_path):
    storage = SparkSetup().storage()
    out = tmp_path / "out"
    out.mkdir()
    check_output(storage, str(out), False)  # empty: fine
    for name in ("best.toml", "trials.csv", "trials.parquet"):
        (out / name).write_text("x")
    with pytest.raises(InputError, match="not empty.*--overwrite"):
        check_output(storage, str(out), False)
    check_output(storage, str(out), True)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an output walsspark tune wrote"):
        check_output(storage, str(out), True)


# -- on Spark ---------------------------------------------------------------------------

RANK, SWEEPS, K = 4, 3, 10


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("tune") / "ratings.parquet")
    table = synthetic_ratings(num_users=150, num_items=80, rank=4, mean_ratings_per_user=12, seed=3)
    write_ratings_parquet(table, path)
    return path


def numpy_metrics(users: dict, items: dict, train, validation) -> tuple[float, float]:
    """NDCG@K over the validation users (training items excluded) and the holdout RMSE,
    from factors ({id: features}) of a model trained on its own."""
    item_ids = sorted(items)
    V = np.stack([np.asarray(items[i], dtype=np.float64) for i in item_ids])
    seen: dict = {}
    for user, item in train:
        seen.setdefault(user, set()).add(item)
    relevant: dict = {}
    for user, item in validation:
        if user in users and item in items:
            relevant.setdefault(user, set()).add(item)
    discounts = 1 / np.log2(np.arange(2, K + 2))
    ndcgs = []
    for user, wanted in relevant.items():
        scores = V @ np.asarray(users[user], dtype=np.float64)
        ranked = [item_ids[j] for j in np.argsort(-scores, kind="stable")]
        top = [i for i in ranked if i not in seen.get(user, ())][:K]
        dcg = sum(d for d, i in zip(discounts, top, strict=False) if i in wanted)
        ndcgs.append(dcg / discounts[: min(K, len(wanted))].sum())
    # Implicit feedback: every held-out target is 1.
    errors = [1.0 - np.dot(users[u], items[i]) for u, i in validation if u in users and i in items]
    return float(np.mean(ndcgs)), float(np.sqrt(np.mean(np.square(errors))))


def factors(rows) -> dict:
    return {r["id"]: r["features"] for r in rows}


def test_tune_picks_the_best_of_a_grid_trained_apart(spark, ratings_file, tmp_path, capsys):
    from dataclasses import replace

    from walsspark.params import WALSParams
    from walsspark.splits import split_ratings
    from walsspark.training import train_model

    grid = tmp_path / "grid.toml"
    grid.write_text('alpha = [1, 20]\nunobserved_col_weights = ["uniform", "power:0.5"]\n')
    out = tmp_path / "tuned"
    args = ["--input", ratings_file, "--implicit", "--rank", str(RANK), "--sweeps", str(SWEEPS)]
    assert main(["tune", *args, "--grid", str(grid), "--output", str(out)]) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("grid search: 4 trials")
    assert sorted(p.name for p in out.iterdir()) == ["best.toml", "trials.csv", "trials.parquet"]
    table = pq.read_table(out / "trials.parquet").to_pylist()
    assert [r["trial"] for r in table] == [1, 2, 3, 4]
    with open(out / "trials.csv") as handle:
        assert len(handle.read().splitlines()) == 5
    best = tomllib.loads((out / "best.toml").read_text())
    winner = next(r for r in table if f"trial {r['trial']} of 4" in (out / "best.toml").read_text())
    assert (best["alpha"], best["unobserved_col_weights"]) == (
        winner["alpha"], winner["unobserved_col_weights"],
    )  # fmt: skip

    # train --config best.toml trains the winner again, on the same split.
    model = tmp_path / "model"
    assert main(["train", "--config", str(out / "best.toml"), "--output", str(model)]) == 0
    metadata = read_metadata(model)
    for key, value in best.items():
        if key in metadata["params"]:
            assert metadata["params"][key] == value, key

    # Every candidate trained on its own (the winner by train --config above; the others by
    # train_model, which lays the data out itself, alpha inside the confidences), scored
    # in numpy on the documented seeded split.
    frame = spark.read.parquet(ratings_file).selectExpr(
        "user_id as user", "item_id as item", "cast(rating as double) as rating"
    )
    train, validation = split_ratings(frame, "user-fraction", 0.2, 1, 0)
    train_pairs = [(r.user, r.item) for r in train.collect()]
    validation_pairs = [(r.user, r.item) for r in validation.collect()]
    base = WALSParams(
        rank=RANK, sweeps=SWEEPS, implicit_prefs=True, unobserved_weight=1.0,
        split="user-fraction", holdout_fraction=0.2,
    )  # fmt: skip
    apart = []
    for row in table:
        if row is winner:
            users = factors(pq.read_table(model / "user_factors").to_pylist())
            items = factors(pq.read_table(model / "item_factors").to_pylist())
            evaluation = metadata["evaluation"]["rmse"]
        else:
            params = replace(
                base, alpha=row["alpha"], unobserved_col_weights=row["unobserved_col_weights"]
            )
            trained = train_model(spark, frame, params)
            users = factors(trained.user_factors().collect())
            items = factors(trained.item_factors().collect())
            evaluation = trained.metadata["evaluation"]["rmse"]
            trained.release()
        ndcg, rmse = numpy_metrics(users, items, train_pairs, validation_pairs)
        assert evaluation == pytest.approx(rmse, rel=1e-4)
        assert row["rmse"] == pytest.approx(rmse, rel=1e-4)
        assert row["ndcg@10"] == pytest.approx(ndcg, abs=1e-6)
        apart.append(ndcg)
    assert table[int(np.argmax(apart))] is winner


def test_halving_search_of_the_default_space(spark, ratings_file, capsys):
    out = f"viewfs://{VIEWFS_TABLE}/data/halving"
    args = ["tune", "--input", ratings_file, "--rank", str(RANK), "--sweeps", str(SWEEPS)]
    args += ["--search", "halving", "--trials", "5", "--metric", "rmse", "--seed", "4"]
    assert main([*args, "--output", out]) == 0
    assert "halving search: 6 trials" in capsys.readouterr().out
    rows = [r.asDict() for r in spark.read.parquet(f"{out}/trials.parquet").collect()]
    rows.sort(key=lambda r: r["trial"])
    assert [(r["stage"], r["sweeps"]) for r in rows] == [(1, 1)] * 5 + [(2, 3)]
    params = ["regularization", "reg_exponent", "unobserved_weight", "unobserved_col_weights"]
    first = min(rows[:5], key=lambda r: r["rmse"])
    assert [rows[5][p] for p in params] == [first[p] for p in params]
    assert "ndcg@10" not in rows[0] and "alpha" not in rows[0]  # rmse only; explicit
    text = "".join(r.value for r in spark.read.text(f"{out}/best.toml", wholetext=True).collect())
    best = tomllib.loads(text)
    assert [best[p] for p in params] == [first[p] for p in params]
    assert best["sweeps"] == SWEEPS and best["implicit_prefs"] is False
    assert spark.read.option("header", True).csv(f"{out}/trials.csv").count() == 6
    # A tune output on a file system only Spark sees is replaced with --overwrite.
    again = [*args, "--search", "random", "--trials", "1", "--output", out, "--overwrite"]
    assert main(again) == 0
    assert spark.read.option("header", True).csv(f"{out}/trials.csv").count() == 1
