"""`walsspark project`: fold-in of new users and items through the command line."""

from __future__ import annotations

import numpy as np
import oracle
import pytest
from model_files import read_metadata

from walsspark.cli import main

TRAIN_CSV = """user_id,item_id,rating
u1,10,5
u1,11,3
u2,10,4
u2,12,1
u3,11,2
u3,12,5
u3,13,4
u4,13,3
u4,10,2
"""
NEW_USERS_CSV = """user_id,item_id,rating
n1,10,5
n1,13,1
n2,12,4
n2,11,2
n2,10,3
n3,99,5
"""


@pytest.fixture(scope="module")
def model(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    (root / "train.csv").write_text(TRAIN_CSV)
    path = root / "model"
    args = [
        "train",
        "--input",
        str(root / "train.csv"),
        "--output",
        str(path),
        "--rank",
        "2",
        "--sweeps",
        "3",
        "--holdout-fraction",
        "0",
        "--unobserved-weight",
        "0.1",
        "--regularization",
        "0.2",
        "--reg-exponent",
        "1",
        "--seed",
        "4",
    ]
    assert main(args) == 0
    data = read_metadata(path)["data"]
    assert (data["num_users"], data["num_items"]) == (4, 4)
    return path


def factors_of(spark, path):
    return {r["id"]: np.array(r["features"]) for r in spark.read.parquet(str(path)).collect()}


def test_projected_users_equal_the_training_row_update(spark, model, tmp_path, capsys):
    (tmp_path / "new.csv").write_text(NEW_USERS_CSV)
    out = tmp_path / "out"
    code = main(
        [
            "project",
            "--model",
            str(model),
            "--input",
            str(tmp_path / "new.csv"),
            "--output",
            str(out),
            "--k",
            "2",
        ]
    )
    assert code == 0, capsys.readouterr().err
    items = factors_of(spark, model / "item_factors")
    item_ids = sorted(items)
    projected = {r["id"]: r for r in spark.read.parquet(str(out / "factors")).collect()}

    new = [line.split(",") for line in NEW_USERS_CSV.strip().splitlines()[1:]]
    known = [(u, int(i), float(r)) for u, i, r in new if int(i) in items]
    users = sorted({u for u, _, _ in known})
    rows = np.array([users.index(u) for u, _, _ in known])
    cols = np.array([item_ids.index(i) for _, i, _ in known])
    values = np.array([r for _, _, r in known])
    targets, w, observed = oracle.dense_problem(rows, cols, values, len(users), len(items), 0.1)
    matrix = np.array([items[i] for i in item_ids])
    expected = oracle.row_update(targets, w, observed, matrix, 0.2, 1.0)
    for index, user in enumerate(users):
        np.testing.assert_allclose(
            projected[user]["features"], expected[index], rtol=1e-4, atol=1e-5
        )
    assert projected["n3"]["rated"] == 0 and not any(projected["n3"]["features"])
    assert "zero factors" in capsys.readouterr().err

    recs = {
        r["id"]: [x["id"] for x in r["recommendations"]]
        for r in spark.read.parquet(str(out / "recommendations")).collect()
    }
    assert recs["n1"] and not {10, 13} & set(recs["n1"])
    assert recs["n2"] == [13]  # n2 rated 10, 11 and 12: one candidate left


def test_project_new_items(spark, model, tmp_path):
    (tmp_path / "new.csv").write_text("user_id,item_id,rating\nu1,500,4\nu3,500,2\nu2,501,5\n")
    out = tmp_path / "out"
    args = [
        "project",
        "--model",
        str(model),
        "--input",
        str(tmp_path / "new.csv"),
        "--for",
        "items",
        "--output",
        str(out),
    ]
    assert main(args) == 0
    assert sorted(factors_of(spark, out / "factors")) == [500, 501]


@pytest.mark.parametrize(
    "extra, content, words",
    [
        (["--k", "0"], NEW_USERS_CSV, "k must be >= 1"),
        # The model's item ids are integers; "i10" is text (a user id "5" would be the
        # text "5", as the model's user ids are text).
        ([], "user_id,item_id,rating\nu5,i10,3\n", "item ids"),
        ([], "user_id,item_id,rating\n", "no ratings"),
    ],
    ids=["k0", "id-type", "empty"],
)
def test_project_bad_input(spark, model, tmp_path, capsys, extra, content, words):
    (tmp_path / "new.csv").write_text(content)
    out = tmp_path / "out"
    args = [
        "project",
        "--model",
        str(model),
        "--input",
        str(tmp_path / "new.csv"),
        "--output",
        str(out),
        *extra,
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("walsspark: error:") and words in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv"]


def test_project_missing_model(tmp_path, capsys):
    assert (
        main(
            [
                "project",
                "--model",
                str(tmp_path / "none"),
                "--input",
                "x.csv",
                "--output",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "model directory not found" in capsys.readouterr().err


def test_train_also_writes_both_recommendation_tables(spark, tmp_path, capsys):
    (tmp_path / "train.csv").write_text(TRAIN_CSV)
    args = [
        "train",
        "--input",
        str(tmp_path / "train.csv"),
        "--output",
        str(tmp_path / "m"),
        "--rank",
        "2",
        "--sweeps",
        "2",
        "--holdout-fraction",
        "0",
        "--recommend-k",
        "2",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "top-2 recommendations written to" in printed and "user u1:" in printed
    base = tmp_path / "m-recommendations"
    users = {
        r["id"]: [x["id"] for x in r["recommendations"]]
        for r in spark.read.parquet(str(base / "users")).collect()
    }
    items = {
        r["id"]: [x["id"] for x in r["recommendations"]]
        for r in spark.read.parquet(str(base / "items")).collect()
    }
    rated = {}
    for line in TRAIN_CSV.strip().splitlines()[1:]:
        user, item, _ = line.split(",")
        rated.setdefault(user, set()).add(int(item))
    assert sorted(users) == ["u1", "u2", "u3", "u4"] and sorted(items) == [10, 11, 12, 13]
    for user, recommended in users.items():
        assert len(recommended) == min(2, 4 - len(rated[user]))
        assert not set(recommended) & rated[user]
    for item, recommended in items.items():
        assert not {u for u in recommended if item in rated[u]}
