"""walsspark.ml: WALS and WALSModel as a pyspark.ml Estimator and Model (classic Spark).

Checked against known answers: the command line's training flow, dot products and brute
force top-K over the collected factors, the dense fold-in oracle and MLlib ALS's own output
layout. Spark Connect runs the same API in test_ml_connect.py.
"""

from __future__ import annotations

import numpy as np
import oracle
import pytest
from ml_data import COLUMNS, SCHEMA, explicit_rows

from walsspark.errors import InputError
from walsspark.ml import WALS, WALSModel
from walsspark.ml.params import wals_params
from walsspark.params import WALSParams


@pytest.fixture(scope="module")
def ratings(spark):
    return spark.createDataFrame(explicit_rows(), SCHEMA)


PARAMS = dict(rank=3, maxIter=4, regParam=0.1, numUserBlocks=2, numItemBlocks=2)


@pytest.fixture(scope="module")
def model(ratings):
    return WALS(**PARAMS, **COLUMNS).fit(ratings)


def factor_dict(frame):
    return {row["id"]: np.array(row["features"], dtype=np.float64) for row in frame.collect()}


def test_fit_equals_the_command_line_train(spark, model, tmp_path, capsys):
    from walsspark.cli import main

    # MLlib's explicit objective by default: w0 = 0, lambda scaled by counts (nu = 1).
    params = WALSParams(
        rank=3,
        sweeps=4,
        regularization=0.1,
        unobserved_weight=0.0,
        reg_exponent=1.0,
        num_user_blocks=2,
        num_item_blocks=2,
    )
    assert model.trainingParams == params
    csv = tmp_path / "ratings.csv"
    csv.write_text("u,i,r\n" + "".join(f"{u},{i},{r}\n" for u, i, r in explicit_rows()))
    out = tmp_path / "cli-model"
    args = ["train", "--input", str(csv), "--output", str(out), "--user-col", "u"]
    args += ["--item-col", "i", "--rating-col", "r", "--rank", "3", "--sweeps", "4"]
    args += ["--regularization", "0.1", "--unobserved-weight", "0", "--reg-exponent", "1"]
    args += ["--num-user-blocks", "2", "--num-item-blocks", "2", "--holdout-fraction", "0"]
    assert main(args) == 0, capsys.readouterr().err
    cli_users = factor_dict(spark.read.parquet(str(out / "user_factors")))
    cli_items = factor_dict(spark.read.parquet(str(out / "item_factors")))
    users, items = factor_dict(model.userFactors), factor_dict(model.itemFactors)
    assert users.keys() == cli_users.keys() and items.keys() == cli_items.keys()
    for key, value in users.items():
        np.testing.assert_array_equal(value, cli_users[key])
    for key, value in items.items():
        np.testing.assert_array_equal(value, cli_items[key])
    assert model.rank == 3 and model.summary.totalIterations == 4
    losses = model.summary.objectiveHistory
    assert all(b <= a * (1 + 1e-9) for a, b in zip(losses, losses[1:], strict=False))


def test_string_ids_fit_predict_and_recommend(spark):
    rows = [(f"u{u}", f"item-{i}", r) for u, i, r in explicit_rows(seed=9)]
    frame = spark.createDataFrame(rows, "who string, what string, stars double")
    wals = WALS(rank=2, maxIter=2, userCol="who", itemCol="what", ratingCol="stars")
    model = wals.fit(frame)
    users, items = factor_dict(model.userFactors), factor_dict(model.itemFactors)
    assert "u0" in users and "item-3" in items
    row = model.transform(frame.limit(1)).collect()[0]
    assert row["prediction"] == pytest.approx(users[row["who"]] @ items[row["what"]], rel=1e-5)
    lists = model.recommendForAllUsers(2).collect()
    assert lists[0]["recommendations"][0]["what"].startswith("item-")
    with pytest.raises(InputError, match="rankingK needs numeric item ids"):
        model.copy({model.rankingK: 5}).transform(frame)


def test_transform_predicts_dot_products_and_handles_cold_ids(spark, model):
    users, items = factor_dict(model.userFactors), factor_dict(model.itemFactors)
    test = spark.createDataFrame(
        [(0, 1, 3.0), (5, 7, 4.0), (999, 1, 2.0), (0, 999, 1.0)],
        "user_id int, item_id int, rating double",
    )
    rows = {(r["user_id"], r["item_id"]): r for r in model.transform(test).collect()}
    for user, item in ((0, 1), (5, 7)):
        expected = users[user] @ items[item]
        assert rows[(user, item)]["prediction"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
        assert rows[(user, item)]["rating"] in (3.0, 4.0)  # the input columns stay
    assert np.isnan(rows[(999, 1)]["prediction"]) and np.isnan(rows[(0, 999)]["prediction"])
    dropped = model.copy({model.coldStartStrategy: "drop"}).transform(test)
    assert sorted((r["user_id"], r["item_id"]) for r in dropped.collect()) == [(0, 1), (5, 7)]


def brute_force_top(query, candidates, k, exclude=()):
    ids = sorted(candidates)
    matrix = np.array([candidates[i] for i in ids])
    scores = matrix @ query
    order = sorted(range(len(ids)), key=lambda j: (-scores[j], ids[j]))
    return [ids[j] for j in order if ids[j] not in exclude][:k]


def test_recommendations_have_mllib_layout_and_brute_force_lists(spark, ratings, model):
    from pyspark.ml.recommendation import ALS

    users, items = factor_dict(model.userFactors), factor_dict(model.itemFactors)
    seen: dict[int, set] = {}
    for user, item, _ in explicit_rows():
        seen.setdefault(user, set()).add(item)
    mllib = ALS(rank=2, maxIter=1, **COLUMNS).fit(ratings)

    all_users = model.recommendForAllUsers(5)
    assert [f.name for f in all_users.schema.fields] == [
        f.name for f in mllib.recommendForAllUsers(5).schema.fields
    ]
    element = all_users.schema["recommendations"].dataType.elementType
    assert element.fieldNames() == ["item_id", "rating"]
    for row in all_users.collect():
        listed = [r["item_id"] for r in row["recommendations"]]
        # Scores tie at float precision rarely; compare against the brute force order.
        assert listed == brute_force_top(users[row["user_id"]], items, 5), row["user_id"]

    excluding = model.copy({model.excludeSeen: True})
    for row in excluding.recommendForAllUsers(5).collect():
        listed = [r["item_id"] for r in row["recommendations"]]
        expected = brute_force_top(users[row["user_id"]], items, 5, seen[row["user_id"]])
        assert listed == expected
    subset = spark.createDataFrame([(3,), (7,), (12345,)], "user_id int")
    rows = excluding.recommendForUserSubset(subset, 4).collect()
    assert sorted(r["user_id"] for r in rows) == [3, 7]  # unknown users get no row
    for row in rows:
        listed = [r["item_id"] for r in row["recommendations"]]
        assert listed == brute_force_top(users[row["user_id"]], items, 4, seen[row["user_id"]])

    by_item = model.recommendForItemSubset(spark.createDataFrame([(2,)], "item_id int"), 3)
    row = by_item.collect()[0]
    assert [f.name for f in by_item.schema.fields] == ["item_id", "recommendations"]
    assert [r["user_id"] for r in row["recommendations"]] == brute_force_top(items[2], users, 3)
    assert model.recommendForAllItems(2).count() == len(items)


def test_ranking_rows_exclude_training_items(spark, model):
    users, items = factor_dict(model.userFactors), factor_dict(model.itemFactors)
    seen: dict[int, set] = {}
    for user, item, _ in explicit_rows():
        seen.setdefault(user, set()).add(item)
    test = spark.createDataFrame(
        [(1, 30, 5.0), (1, 31, 4.0), (2, 5, 1.0), (777, 3, 2.0)],
        "user_id int, item_id int, rating double",
    )
    ranking = model.copy({model.rankingK: 3})
    rows = {r["user_id"]: r for r in ranking.transform(test).collect()}
    assert set(rows) == {1, 2, 777}
    for user in (1, 2):
        expected = brute_force_top(users[user], items, 3, seen[user])
        assert rows[user]["prediction"] == [float(i) for i in expected]
    assert sorted(rows[1]["label"]) == [30.0, 31.0] and rows[2]["label"] == [5.0]
    assert rows[777]["prediction"] == []  # unknown user, coldStartStrategy="nan"
    dropped = ranking.copy({ranking.coldStartStrategy: "drop"}).transform(test)
    assert sorted(r["user_id"] for r in dropped.collect()) == [1, 2]


def test_project_users_is_the_training_row_update(spark, model):
    items = factor_dict(model.itemFactors)
    new = [(500, 1, 5.0), (500, 2, 1.0), (500, 3, 4.0), (501, 4, 2.0), (502, 9999, 3.0)]
    frame = spark.createDataFrame(new, "user_id int, item_id int, rating double")
    projected = {r["id"]: r for r in model.projectUsers(frame).collect()}
    item_ids = sorted(items)
    matrix = np.array([items[i] for i in item_ids])
    known = [(u, i, r) for u, i, r in new if i in items]
    new_users = sorted({u for u, _, _ in known})
    rows = np.array([new_users.index(u) for u, _, _ in known])
    cols = np.array([item_ids.index(i) for _, i, _ in known])
    values = np.array([r for _, _, r in known])
    targets, w, observed = oracle.dense_problem(
        rows, cols, values, len(new_users), len(item_ids), 0.0
    )
    expected = oracle.row_update(targets, w, observed, matrix, 0.1, 1.0)
    for index, user in enumerate(new_users):
        np.testing.assert_allclose(
            projected[user]["features"], expected[index], rtol=1e-4, atol=1e-5
        )
    assert projected[502]["rated"] == 0


def test_project_items_is_the_training_column_update(spark, model):
    users = factor_dict(model.userFactors)
    new = [(1, 900, 4.0), (2, 900, 2.0), (3, 900, 5.0), (4, 901, 1.0)]
    frame = spark.createDataFrame(new, "user_id int, item_id int, rating double")
    projected = {r["id"]: r for r in model.projectItems(frame).collect()}
    user_ids = sorted(users)
    matrix = np.array([users[u] for u in user_ids])
    new_items = [900, 901]
    rows = np.array([new_items.index(i) for _, i, _ in new])
    cols = np.array([user_ids.index(u) for u, _, _ in new])
    values = np.array([r for _, _, r in new])
    targets, w, observed = oracle.dense_problem(rows, cols, values, 2, len(user_ids), 0.0)
    expected = oracle.row_update(targets, w, observed, matrix, 0.1, 1.0)
    for index, item in enumerate(new_items):
        np.testing.assert_allclose(
            projected[item]["features"], expected[index], rtol=1e-4, atol=1e-5
        )


def test_saved_model_loads_in_the_command_line_and_back(spark, model, tmp_path, capsys):
    from walsspark.cli import main

    path = str(tmp_path / "model")
    model.copy({model.excludeSeen: True}).write().overwrite().save(path)
    model.write().overwrite().save(path)  # replaces its own output
    loaded = WALSModel.load(path)
    assert loaded.uid == model.uid and loaded.getUserCol() == "user_id"
    assert factor_dict(loaded.userFactors).keys() == factor_dict(model.userFactors).keys()
    assert loaded.summary.objectiveHistory == model.summary.objectiveHistory
    # Its tables are read from there: saving over them is refused, elsewhere it works.
    with pytest.raises(InputError, match="cannot save the model over"):
        loaded.write().overwrite().save(path)
    loaded.write().save(str(tmp_path / "copy"))
    assert WALSModel.load(str(tmp_path / "copy")).uid == model.uid

    out = str(tmp_path / "recs")
    assert main(["recommend", "--model", path, "--output", out, "--k", "3"]) == 0
    from_cli = {
        r["id"]: [x["id"] for x in r["recommendations"]] for r in spark.read.parquet(out).collect()
    }
    from_model = {
        r["user_id"]: [x["item_id"] for x in r["recommendations"]]
        for r in loaded.copy({loaded.excludeSeen: True}).recommendForAllUsers(3).collect()
    }
    assert from_cli == from_model

    # A model trained by the command line loads as a WALSModel.
    (tmp_path / "r.csv").write_text(
        "u,i,r\n" + "".join(f"{u},{i},{r}\n" for u, i, r in explicit_rows(seed=5))
    )
    cli_model = str(tmp_path / "cli-model")
    args = ["train", "--input", str(tmp_path / "r.csv"), "--output", cli_model]
    args += ["--user-col", "u", "--item-col", "i", "--rating-col", "r", "--rank", "2"]
    assert main([*args, "--sweeps", "2"]) == 0
    capsys.readouterr()
    trained = WALSModel.load(cli_model)
    assert (trained.getUserCol(), trained.getItemCol(), trained.rank) == ("u", "i", 2)
    frame = spark.createDataFrame([(0, 1)], "u int, i int")
    assert trained.transform(frame).collect()[0]["prediction"] == pytest.approx(
        factor_dict(trained.userFactors)[0] @ factor_dict(trained.itemFactors)[1], rel=1e-5
    )


def test_saving_over_a_foreign_directory_is_refused(model, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an output walsspark wrote"):
        model.write().overwrite().save(str(tmp_path))
    with pytest.raises(InputError, match=r"not empty: .* \(use write\(\)\.overwrite\(\)"):
        model.write().save(str(tmp_path))
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "params, words",
    [
        ({"rank": 0}, "rank must be an integer >= 1, got 0"),
        ({"maxIter": 0}, "maxIter must be an integer >= 1, got 0"),
        ({"regParam": -1.0}, "regParam must be a finite number >= 0"),
        ({"regParam": 0.0, "unobservedWeight": 0.0}, "unobservedWeight and regParam cannot"),
        ({"solver": "lbfgs"}, "solver must be one of exact, cg"),
        ({"preset": "als"}, "preset must be one of mllib, tf-wals"),
        ({"coldStartStrategy": "skip"}, "coldStartStrategy must be one of nan, drop"),
        ({"nonnegative": True}, "nonnegative=True is not supported"),
        ({"rowWeights": "power:x"}, "rowWeights must be a number >= 0, linear:F"),
        ({"unobservedColWeights": "pow:1"}, "unobservedColWeights must be uniform or power:E"),
        ({"userCol": "who"}, "missing column who"),
    ],
)
def test_bad_params_fail_with_the_command_line_message(ratings, params, words):
    with pytest.raises(InputError) as error:
        WALS(**{**PARAMS, **COLUMNS, **params}).fit(ratings)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_unknown_keyword_and_setters():
    with pytest.raises(TypeError, match="unexpected keyword arguments: ranks"):
        WALS(ranks=3)
    wals = WALS().setRank(7).setMaxIter(3).setImplicitPrefs(True).setUnobservedWeight(0.5)
    assert (wals.getRank(), wals.getMaxIter(), wals.getImplicitPrefs()) == (7, 3, True)
    # Unset objective Params follow the preset: MLlib implicit here (nu = 1).
    assert (wals.getUnobservedWeight(), wals.getRegExponent()) == (0.5, 1.0)
    assert WALS(preset="tf-wals").getUnobservedWeight() == 0.1
    assert (
        WALS().getUnobservedWeight() == 0.0
        and WALS(implicitPrefs=True).getUnobservedWeight() == 1.0
    )
    params = WALS().params
    assert params and all(param.doc for param in params)
    # MLlib's spellings: case-insensitive strategy, -1 for no checkpoints, setNumBlocks.
    mllib_style = WALS(coldStartStrategy="DROP", checkpointInterval=-1, blockSize=1024)
    mllib_style.setNumBlocks(3)
    assert mllib_style.getColdStartStrategy() == "drop"
    assert (mllib_style.getNumUserBlocks(), mllib_style.getNumItemBlocks()) == (3, 3)
    assert wals_params(mllib_style).checkpoint_interval > 10**9


def test_estimator_save_load_overwrite(tmp_path):
    wals = WALS(rank=5, regParam=0.3, implicitPrefs=True, userCol="u")
    path = str(tmp_path / "wals")
    wals.save(path)
    wals.write().overwrite().save(path)
    loaded = WALS.load(path)
    assert loaded.uid == wals.uid
    assert (loaded.getRank(), loaded.getRegParam(), loaded.getUserCol()) == (5, 0.3, "u")
    assert loaded.getImplicitPrefs() and not loaded.isSet(loaded.maxIter)
