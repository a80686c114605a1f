"""Every figure walsspark reports, against a value computed outside the code that reports it.

The expected values are recomputed here with numpy and plain Python from the model files
(read with pyarrow, not walsspark) and from the definitions in README.md, and, where Spark
ML has the same metric, with ``pyspark.ml.evaluation``. Nothing from walsspark's metric,
split or weighting code is imported.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import oracle
import pyarrow.parquet as pq
import pytest
from model_files import read_metadata
from pyspark.ml.evaluation import RankingEvaluator, RegressionEvaluator
from test_train import initial_items_of

from walsspark.cli import main

USERS, ITEMS, RANK = 40, 30, 3
SEED, HOLDOUT = 7, 0.25
W0, ROW_WEIGHT, COL_WEIGHT = 0.2, 2.0, 1.5


def write_ratings(path: Path, seed: int = 3, density: float = 0.35) -> list[tuple]:
    """(user, item, rating, w) rows with integer ids, written as CSV with a weight column."""
    rng = np.random.default_rng(seed)
    rows = [
        (100 + u, 500 + 3 * i, float(rng.integers(1, 6)), float(rng.uniform(0.5, 2.0)))
        for u in range(USERS)
        for i in range(ITEMS)
        if rng.random() < density
    ]
    path.write_text(
        "user_id,item_id,rating,w\n" + "".join(f"{u},{i},{r},{w!r}\n" for u, i, r, w in rows)
    )
    return rows


def factors(model: Path, table: str) -> dict:
    return {
        row["id"]: np.array(row["features"], dtype=np.float64)
        for row in pq.read_table(str(model / table)).to_pylist()
    }


def held_out(spark, rows: list[tuple], seed: int, fraction: float) -> set[tuple]:
    """README's random split: held out when (xxhash64(seed, user, item) >>> 11) / 2^53 is
    below the fraction; the hash is Spark's own, the rule is written here."""
    pairs = spark.createDataFrame([(u, i) for u, i, _, _ in rows], "user long, item long")
    uniforms = pairs.selectExpr(
        "user",
        "item",
        f"shiftrightunsigned(xxhash64(cast({seed} as bigint), user, item), 11)"
        f" / {float(2**53)!r} as u",
    ).collect()
    return {(r.user, r.item) for r in uniforms if r.u < fraction}


def regression_metrics(spark, labels: list[float], predictions: list[float]) -> dict:
    frame = spark.createDataFrame(
        list(zip(labels, predictions, strict=True)), "label double, prediction double"
    )
    return {name: RegressionEvaluator(metricName=name).evaluate(frame) for name in ("rmse", "mae")}


@pytest.fixture(scope="module")
def explicit_run(spark, tmp_path_factory):
    """A model trained with a 25% holdout and per-entry weights (W = w0 + R C c_ij)."""
    root = tmp_path_factory.mktemp("oracles")
    rows = write_ratings(root / "ratings.csv")
    model = root / "model"
    args = [
        "train", "--input", str(root / "ratings.csv"), "--output", str(model),
        "--rank", str(RANK), "--sweeps", "3", "--seed", str(SEED),
        "--holdout-fraction", str(HOLDOUT), "--weight-col", "w",
        "--unobserved-weight", str(W0), "--row-weights", str(ROW_WEIGHT),
        "--col-weights", str(COL_WEIGHT), "--regularization", "0.1",
    ]  # fmt: skip
    assert main(args) == 0
    return root, rows, model


def test_training_holdout_metrics_equal_a_recomputation(spark, explicit_run):
    root, rows, model = explicit_run
    holdout = held_out(spark, rows, SEED, HOLDOUT)
    users, items = factors(model, "user_factors"), factors(model, "item_factors")
    known = [r for r in rows if (r[0], r[1]) in holdout and r[0] in users and r[1] in items]
    cold = sum(1 for r in rows if (r[0], r[1]) in holdout) - len(known)
    labels = [r[2] for r in known]
    predictions = [float(users[u] @ items[i]) for u, i, _, _ in known]
    weights = [W0 + ROW_WEIGHT * COL_WEIGHT * w for _, _, _, w in known]
    errors = np.array(labels) - np.array(predictions)
    loss = float(np.sum(np.array(weights) * errors**2))
    expected = {
        "count": len(known),
        "cold_count": cold,
        "rmse": math.sqrt(float(np.mean(errors**2))),
        "mae": float(np.mean(np.abs(errors))),
        "loss": loss,
        "rwse": math.sqrt(loss / sum(weights)),
    }
    assert expected["count"] > 50 and expected["rwse"] != pytest.approx(expected["rmse"])

    metadata = read_metadata(model)
    for reported in (metadata["evaluation"], metadata["history"][-1]["holdout"]):
        for name in ("rmse", "mae", "loss", "rwse"):
            assert reported[name] == pytest.approx(expected[name], rel=1e-5), name
    assert metadata["evaluation"]["count"] == expected["count"]
    assert metadata["evaluation"]["cold_count"] == expected["cold_count"]
    # Spark ML's own evaluator on the same predictions.
    spark_ml = regression_metrics(spark, labels, predictions)
    assert metadata["evaluation"]["rmse"] == pytest.approx(spark_ml["rmse"], rel=1e-5)
    assert metadata["evaluation"]["mae"] == pytest.approx(spark_ml["mae"], rel=1e-5)


def read_lists(path: Path) -> dict:
    return {
        row["id"]: [x["id"] for x in row["recommendations"]]
        for row in pq.read_table(str(path)).to_pylist()
    }


def plain_ranking_metrics(lists: dict, relevant: dict, k: int) -> dict:
    """README's definitions (Spark MLlib RankingMetrics'), one user at a time."""
    sums = {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0, "hit_rate": 0.0}
    for user, wanted in relevant.items():
        ranked = lists.get(user, [])[:k]
        hits = [1.0 if i < len(ranked) and ranked[i] in wanted else 0.0 for i in range(k)]
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(wanted))))
        precision_at = [sum(hits[: i + 1]) / (i + 1) for i in range(k)]
        sums["precision"] += sum(hits) / k
        sums["recall"] += sum(hits) / len(wanted)
        sums["ndcg"] += dcg / ideal
        sums["map"] += sum(p * h for p, h in zip(precision_at, hits, strict=True)) / min(
            k, len(wanted)
        )
        sums["hit_rate"] += 1.0 if any(hits) else 0.0
    return {name: total / len(relevant) for name, total in sums.items()}


def test_evaluate_figures_equal_recomputations_and_spark_ml(spark, explicit_run, tmp_path):
    root, rows, model = explicit_run
    holdout = held_out(spark, rows, SEED, HOLDOUT)
    test_rows = [r for r in rows if (r[0], r[1]) in holdout]
    test_csv = tmp_path / "test.csv"
    test_csv.write_text(
        "user_id,item_id,rating\n"
        + "".join(f"{u},{i},{r}\n" for u, i, r, _ in test_rows)
        + "9999,500,4.0\n"  # a user the model does not know: cold
    )
    k, out, recs = 4, tmp_path / "evaluation", tmp_path / "recs"
    args = ["evaluate", "--model", str(model), "--test", str(test_csv), "--k", str(k)]
    assert main([*args, "--min-rating", "3", "--output", str(out)]) == 0
    (part,) = sorted(out.glob("part-*"))
    result = json.loads(part.read_text())
    metrics = result["metrics"]

    # Rating metrics over the test pairs the model knows.
    users, items = factors(model, "user_factors"), factors(model, "item_factors")
    known = [r for r in test_rows if r[0] in users and r[1] in items]
    labels = [r[2] for r in known]
    predictions = [float(users[u] @ items[i]) for u, i, _, _ in known]
    errors = np.array(labels) - np.array(predictions)
    assert metrics["rmse"] == pytest.approx(math.sqrt(float(np.mean(errors**2))), rel=1e-5)
    assert metrics["mae"] == pytest.approx(float(np.mean(np.abs(errors))), rel=1e-5)
    spark_ml = regression_metrics(spark, labels, predictions)
    assert metrics["rmse"] == pytest.approx(spark_ml["rmse"], rel=1e-5)
    assert metrics["mae"] == pytest.approx(spark_ml["mae"], rel=1e-5)
    assert result["cold_ratings"] == len(test_rows) + 1 - len(known) >= 1

    # Ranking metrics over the top-K lists recommend writes (training pairs excluded).
    assert main(["recommend", "--model", str(model), "--k", str(k), "--output", str(recs)]) == 0
    lists = read_lists(recs)
    relevant: dict[int, set] = {}
    for user, item, rating, _ in known:
        if rating >= 3:
            relevant.setdefault(user, set()).add(item)
    expected = plain_ranking_metrics(lists, relevant, k)
    assert metrics["users"] == len(relevant) > 10
    for name, value in expected.items():
        assert metrics[f"{name}@{k}"] == pytest.approx(value, rel=1e-9), name
    # Spark ML's RankingEvaluator (numeric ids) on the same lists and relevant sets.
    frame = spark.createDataFrame(
        [([float(i) for i in lists.get(u, [])], [float(i) for i in sorted(wanted)])
         for u, wanted in relevant.items()],
        "prediction array<double>, label array<double>",
    )  # fmt: skip
    for ours, theirs in [
        ("precision", "precisionAtK"),
        ("recall", "recallAtK"),
        ("ndcg", "ndcgAtK"),
        ("map", "meanAveragePrecisionAtK"),
    ]:
        evaluator = RankingEvaluator(metricName=theirs, k=k)
        assert metrics[f"{ours}@{k}"] == pytest.approx(evaluator.evaluate(frame), rel=1e-9), ours


PRESETS = {
    "tf-wals": [],
    "mllib-explicit": ["--regularization", "0.05"],
    "mllib-implicit": ["--alpha", "2"],
}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_printed_losses_equal_the_dense_objective(spark, tmp_path, capsys, preset):
    # The loss of every sweep (logged, and kept in the metadata's history) is the value of
    # the objective, computed densely from the definitions: each sweep of the oracle, and
    # the final one also straight from the saved factors.
    rng = np.random.default_rng(5)
    n, m = 20, 15
    mask = rng.random((n, m)) < 0.4
    rows, cols = np.nonzero(mask)
    values = rng.integers(1, 6, len(rows)).astype(np.float64)
    data = tmp_path / "r.csv"
    data.write_text(
        "user_id,item_id,rating\n"
        + "".join(f"{i},{100 + j},{v}\n" for i, j, v in zip(rows, cols, values, strict=True))
    )
    model = tmp_path / "model"
    args = ["train", "--input", str(data), "--output", str(model), "--preset", preset]
    args += ["--rank", "3", "--sweeps", "3", "--holdout-fraction", "0", *PRESETS[preset]]
    assert main(args) == 0
    params = read_metadata(model)["params"]
    history = [record["loss"] for record in read_metadata(model)["history"]]

    w0, lam, nu = params["unobserved_weight"], params["regularization"], params["reg_exponent"]
    observed = np.zeros((n, m), dtype=bool)
    observed[rows, cols] = True
    targets = np.zeros((n, m))
    weights = np.full((n, m), w0)
    if params["implicit_prefs"]:
        targets[rows, cols] = 1.0
        weights[rows, cols] = w0 + params["alpha"] * values
    else:
        targets[rows, cols] = values
        weights[rows, cols] = w0 + 1.0
    item_ids = [100 + j for j in range(m)]
    initial = initial_items_of(spark, item_ids, 3, params["seed"], id_type="long")
    _, _, expected = oracle.train(targets, weights, observed, initial, 3, lam, nu)
    np.testing.assert_allclose(history, expected, rtol=1e-5)

    users, items = factors(model, "user_factors"), factors(model, "item_factors")
    dense_users = np.array([users[i] for i in range(n)])
    dense_items = np.array([items[100 + j] for j in range(m)])
    final = oracle.loss(targets, weights, observed, dense_users, dense_items, lam, nu)
    assert history[-1] == pytest.approx(final, rel=1e-4)  # float32 factors on disk
    assert f"final loss {history[-1]:.6g}" in capsys.readouterr().out
