"""Presets, implicit feedback and weight schemes against the dense numpy oracle.

The dense weights are built here from the definitions (DESIGN.md section 1), independently
of walsspark.weighting: W_ij = w0 + R_i C_j c_ij on observed entries, w0 elsewhere.
"""

from __future__ import annotations

import numpy as np
import oracle
import pytest
from test_train import dense_factors, initial_items, item_id, make_ratings, user_id

from walsspark.errors import InputError
from walsspark.options import TRAIN_DEFAULTS
from walsspark.params import WALSParams, apply_preset
from walsspark.train import fit
from walsspark.weighting import check_weights, entry_weights

N, M = 30, 20


def preset_params(preset: str, **given) -> WALSParams:
    """What `walsspark train --preset P` with the options ``given`` resolves to."""
    options = apply_preset({**TRAIN_DEFAULTS, "preset": preset, **given}, set(given))
    return WALSParams.from_dict(options).validate()


def frame_with_weights(spark, rows, cols, values, entry_weight, user_weight):
    data = [
        (user_id(int(i)), item_id(int(j)), float(v), float(w), float(user_weight[i]))
        for i, j, v, w in zip(rows, cols, values, entry_weight, strict=True)
    ]
    return spark.createDataFrame(
        data, "user long, item string, rating double, _w_w double, _w_uw double"
    )


def dense_weights(params: WALSParams, rows, cols, values, entry_weight, user_weight):
    """Targets, weights and mask from the definitions."""
    observed = np.zeros((N, M), dtype=bool)
    observed[rows, cols] = True
    n_rows, n_cols = observed.sum(axis=1), observed.sum(axis=0)
    if params.implicit_prefs:
        target = (values > 0).astype(float)
    else:
        target = values
    if params.weight_col:
        confidence = entry_weight
    elif params.implicit_prefs and params.confidence == "log":
        confidence = params.alpha * np.log(1 + values / params.epsilon)
    elif params.implicit_prefs:
        confidence = params.alpha * values
    else:
        confidence = np.ones(len(values))

    def per_id(scheme, counts, column):
        if isinstance(scheme, float):
            return np.full(len(counts), scheme)
        kind, _, value = scheme.partition(":")
        if kind == "linear":
            return float(value) / np.maximum(counts, 1)
        if kind == "power":
            return np.maximum(counts, 1) ** -float(value)
        return column

    row_w = per_id(params.row_weights, n_rows, user_weight)
    col_w = per_id(params.col_weights, n_cols, None)
    targets = np.zeros((N, M))
    targets[rows, cols] = target
    weights = np.full((N, M), float(params.unobserved_weight))
    weights[rows, cols] += row_w[rows] * col_w[cols] * confidence
    return targets, weights, observed


CASES = {
    "preset tf-wals": lambda: preset_params("tf-wals"),
    "preset mllib-explicit": lambda: preset_params("mllib-explicit", regularization=0.05),
    "preset mllib-implicit": lambda: preset_params("mllib-implicit", alpha=2.0),
    "implicit log confidence": lambda: WALSParams(
        implicit_prefs=True, confidence="log", alpha=3.0, epsilon=0.5, unobserved_weight=0.5
    ),
    "linear rows, power cols": lambda: WALSParams(
        row_weights="linear:2", col_weights="power:0.5", unobserved_weight=0.1
    ),
    "weight column, per-user column": lambda: WALSParams(
        weight_col="w", row_weights="col:uw", unobserved_weight=0.2, reg_exponent=1.0
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_weighted_training_equals_dense_oracle(spark, case):
    base = CASES[case]()
    params = WALSParams.from_dict(
        {**base.to_dict(), "rank": 3, "sweeps": 3, "num_user_blocks": 2, "num_item_blocks": 3}
    ).validate()
    rows, cols, values, _, _ = make_ratings(seed=4, n=N, m=M)
    rng = np.random.default_rng(9)
    entry_weight = rng.uniform(0.5, 2.0, len(values))
    user_weight = rng.uniform(0.5, 3.0, N)
    ratings = frame_with_weights(spark, rows, cols, values, entry_weight, user_weight)
    check_weights(ratings, params)

    trained = fit(spark, entry_weights(ratings, params), params)

    targets, weights, observed = dense_weights(
        params, rows, cols, values, entry_weight, user_weight
    )
    expected_users, expected_items, history = oracle.train(
        targets,
        weights,
        observed,
        initial_items(spark, M, params.rank, params.seed),
        params.sweeps,
        params.regularization,
        params.reg_exponent,
    )
    users = dense_factors(trained.user_factors(), [user_id(i) for i in range(N)], params.rank)
    items = dense_factors(trained.item_factors(), [item_id(j) for j in range(M)], params.rank)
    np.testing.assert_allclose(users, expected_users, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(items, expected_items, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose([r.loss for r in trained.history], history, rtol=1e-5)
    trained.release()


def test_presets_set_what_they_document():
    implicit = preset_params("mllib-implicit")
    assert (implicit.implicit_prefs, implicit.unobserved_weight, implicit.reg_exponent) == (
        True,
        1.0,
        1.0,
    )
    explicit = preset_params("mllib-explicit")
    assert (explicit.implicit_prefs, explicit.unobserved_weight, explicit.reg_exponent) == (
        False,
        0.0,
        1.0,
    )
    tf = preset_params("tf-wals")
    assert (tf.unobserved_weight, tf.reg_exponent, tf.row_weights) == (0.1, 0.0, 1.0)
    # An option given explicitly wins over the preset.
    assert preset_params("mllib-implicit", unobserved_weight=0.3).unobserved_weight == 0.3


@pytest.mark.parametrize(
    "rating, weight, params, words",
    [
        (0.0, 1.0, WALSParams(implicit_prefs=True), ("implicit confidence", "> 0")),
        (-2.0, 1.0, WALSParams(implicit_prefs=True), ("ratings > 0",)),
        (3.0, None, WALSParams(weight_col="w"), ("'w'", "null")),
        (3.0, -1.0, WALSParams(weight_col="w"), ("'w'", "not > 0")),
    ],
    ids=["zero implicit", "negative implicit", "null weight", "negative weight"],
)
def test_bad_confidences_are_named(spark, rating, weight, params, words):
    ratings = spark.createDataFrame(
        [(1, 1, 4.0, 1.0), (2, 1, rating, weight)],
        "user long, item long, rating double, _w_w double",
    )
    with pytest.raises(InputError) as error:
        check_weights(ratings, params)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize("scheme", ["linear", "power:x", "col:", "foo:1", "-1", True])
def test_bad_weight_schemes_are_refused(scheme):
    with pytest.raises(InputError, match="row_weights"):
        WALSParams(row_weights=scheme).validate()
