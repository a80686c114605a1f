"""Tests of the synthetic MovieLens-like ratings generator (numpy only, no Spark)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from walsspark.synthetic import DEFAULT_SIZE, synthetic_ratings, write_ratings_parquet

# Small enough that the least-squares check below runs in well under a second.
SMALL = dict(num_users=300, num_items=200, rank=4, mean_ratings_per_user=30.0, seed=7)


@pytest.fixture(scope="module")
def default_table() -> pa.Table:
    return synthetic_ratings(**DEFAULT_SIZE)


@pytest.fixture(scope="module")
def small_table() -> pa.Table:
    return synthetic_ratings(**SMALL)


def _columns(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return tuple(table.column(name).to_numpy() for name in table.column_names)


def test_same_seed_gives_identical_table_and_other_seed_differs(small_table):
    again = synthetic_ratings(**SMALL)
    other = synthetic_ratings(**{**SMALL, "seed": SMALL["seed"] + 1})
    assert again.equals(small_table)
    assert not other.equals(small_table)
    # A different seed must change the content, not just e.g. the row count.
    pairs = set(zip(*_columns(small_table)[:2], strict=True))
    other_pairs = set(zip(*_columns(other)[:2], strict=True))
    assert len(pairs & other_pairs) < 0.5 * len(pairs)


def test_schema_and_dtypes(small_table):
    assert small_table.schema == pa.schema(
        [
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("rating", pa.float32()),
            ("timestamp", pa.int64()),
        ]
    )
    assert all(column.null_count == 0 for column in small_table.columns)


def test_ids_positive_and_pairs_unique(default_table):
    users, items, _, _ = _columns(default_table)
    assert users.min() >= 1 and items.min() >= 1
    pairs = np.unique(np.stack([users, items], axis=1), axis=0)
    assert len(pairs) == default_table.num_rows


def test_ratings_are_whole_stars_with_movielens_like_distribution(default_table):
    _, _, ratings, _ = _columns(default_table)
    assert ratings.min() == 1 and ratings.max() == 5
    np.testing.assert_array_equal(ratings, np.round(ratings))
    assert 3.4 < ratings.mean() < 3.7
    shares = np.bincount(ratings.astype(np.int64), minlength=6)[1:] / ratings.size
    # 4 stars is the mode and 1 star the rarest, as in MovieLens.
    assert shares.argmax() == 3 and shares.argmin() == 0


def test_default_size_is_about_120k_ratings(default_table):
    users, items, _, _ = _columns(default_table)
    assert 110_000 <= default_table.num_rows <= 130_000
    assert len(np.unique(users)) == DEFAULT_SIZE["num_users"]
    assert len(np.unique(items)) > 0.9 * DEFAULT_SIZE["num_items"]


def test_item_popularity_is_skewed(default_table):
    _, items, _, _ = _columns(default_table)
    counts = np.sort(np.unique(items, return_counts=True)[1])[::-1]
    top = counts[: max(1, counts.size // 10)].sum()
    assert top / counts.sum() > 0.35
    # A long tail too: the median item is far below the most popular one.
    assert counts[0] > 20 * np.median(counts)


def test_every_user_has_at_least_five_ratings_and_activity_is_heavy_tailed(default_table):
    users, _, _, _ = _columns(default_table)
    per_user = np.unique(users, return_counts=True)[1]
    assert per_user.min() >= 5
    assert per_user.max() > 8 * np.median(per_user)
    assert abs(per_user.mean() - DEFAULT_SIZE["mean_ratings_per_user"]) < 1.0


def test_timestamps_strictly_increase_within_each_user(default_table):
    users, _, _, timestamps = _columns(default_table)
    assert np.all(np.diff(users) >= 0), "rows are grouped by user"
    same_user = np.diff(users) == 0
    assert np.all(np.diff(timestamps)[same_user] > 0)
    # Plausible Unix seconds: between 2000 and 2030.
    assert timestamps.min() >= 946_684_800 and timestamps.max() < 1_893_456_000


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_users=0),
        dict(rank=0),
        dict(num_items=9),
        dict(mean_ratings_per_user=4.0),
        dict(num_items=40, mean_ratings_per_user=21.0),
    ],
)
def test_invalid_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        synthetic_ratings(**{**SMALL, **kwargs})


def test_write_ratings_parquet_round_trips_and_creates_dirs(tmp_path, small_table):
    path = tmp_path / "a" / "b" / "ratings.parquet"
    write_ratings_parquet(small_table, str(path))
    assert path.is_file()
    assert pq.read_table(path).equals(small_table)


def _rmse(pred: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - actual) ** 2)))


def _als_factors(
    u: np.ndarray, i: np.ndarray, r: np.ndarray, shape: tuple[int, int], rank: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fit biased low-rank least squares by dense-mask ALS and return the factor matrices.

    A user and an item bias are folded into the factors as constant columns, so ``rank=0`` is
    the biases-only model.  It is deliberately independent of the walsspark solver so the test
    checks the data, not the code under test elsewhere.
    """
    mask = np.zeros(shape)
    resid = np.zeros(shape)
    mask[u, i] = 1.0
    resid[u, i] = r
    k = rank + 2  # factors, then a user-bias column (V side = 1), then item-bias (U side = 1)
    rng = np.random.default_rng(1)
    U = rng.normal(0.0, 0.1, (shape[0], k))
    V = rng.normal(0.0, 0.1, (shape[1], k))
    U[:, rank + 1] = 1.0
    V[:, rank] = 1.0
    reg = 5.0 * np.eye(k)
    for _ in range(10):
        gram = np.einsum("ui,ik,il->ukl", mask, V, V) + reg
        U = np.linalg.solve(gram, (resid @ V)[..., None])[..., 0]
        U[:, rank + 1] = 1.0
        gram = np.einsum("ui,uk,ul->ikl", mask, U, U) + reg
        V = np.linalg.solve(gram, (resid.T @ U)[..., None])[..., 0]
        V[:, rank] = 1.0
    return U, V


def _heldout_rmse(table: pa.Table, rank: int) -> dict[str, float]:
    """Held-out RMSE of item means, biases only and biased low-rank on a random 20% split."""
    users, items, ratings, _ = _columns(table)
    _, u = np.unique(users, return_inverse=True)
    _, i = np.unique(items, return_inverse=True)
    r = ratings.astype(np.float64)
    shape = (int(u.max()) + 1, int(i.max()) + 1)
    test = np.random.default_rng(0).random(r.size) < 0.2
    train = ~test

    mu = r[train].mean()
    item_sum = np.bincount(i[train], r[train] - mu, minlength=shape[1])
    item_n = np.bincount(i[train], minlength=shape[1])
    item_mean = mu + item_sum / (item_n + 5.0)  # shrink so unseen items fall back to mu
    result = {"item_means": _rmse(item_mean[i[test]], r[test])}
    for name, k in (("biases", 0), ("low_rank", rank)):
        U, V = _als_factors(u[train], i[train], r[train] - mu, shape, k)
        result[name] = _rmse(mu + np.einsum("nk,nk->n", U[u[test]], V[i[test]]), r[test])
    return result


def test_planted_low_rank_signal_is_recoverable(small_table):
    rmse = _heldout_rmse(small_table, rank=SMALL["rank"])
    assert rmse["low_rank"] < 0.8 * rmse["item_means"], rmse
    # User biases alone already beat item means, so also require a clear gain over a
    # biases-only fit: that gain can only come from the planted user x item factors.
    assert rmse["low_rank"] < 0.85 * rmse["biases"], rmse


def test_low_rank_check_fails_without_user_item_structure(small_table):
    # Control for the test above: shuffling ratings among the users of each item keeps item
    # means but destroys the user x item structure, so the low-rank fit must lose its edge.
    users, items, ratings, timestamps = _columns(small_table)
    rng = np.random.default_rng(3)
    # Both orders list the rows item by item; pairing them moves each rating to a random row
    # of the same item.
    random_within_item = np.lexsort((rng.random(items.size), items))
    by_item = np.argsort(items, kind="stable")
    shuffled = np.empty_like(ratings)
    shuffled[by_item] = ratings[random_within_item]
    assert not np.array_equal(shuffled, ratings)
    control = pa.table(
        {"user_id": users, "item_id": items, "rating": shuffled, "timestamp": timestamps}
    )
    rmse = _heldout_rmse(control, rank=SMALL["rank"])
    assert rmse["low_rank"] > 0.95 * rmse["item_means"], rmse
    assert rmse["low_rank"] > 0.95 * rmse["biases"], rmse
