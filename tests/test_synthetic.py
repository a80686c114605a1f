"""Tests of the synthetic MovieLens-like ratings generator (numpy only, no Spark)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from walsspark.errors import InputError
from walsspark.synthetic import DEFAULT_SIZE, synthetic_ratings, write_ratings_parquet
from walsspark.synthetic_scale import ml20m_like_size, synthetic_ratings_part

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


# ----------------------------------------------------------------------------------------
# The chunked generator (synthetic_ratings_part): parts made independently, one set
# ----------------------------------------------------------------------------------------

CHUNKED = dict(num_users=3000, num_items=2000, rank=6, mean_ratings_per_user=30.0, seed=11)
NUM_PARTS = 4


@pytest.fixture(scope="module")
def parts() -> list[pa.Table]:
    return [synthetic_ratings_part(**CHUNKED, part=p, num_parts=NUM_PARTS) for p in range(4)]


def test_parts_are_deterministic_and_seeded_by_part(parts):
    again = synthetic_ratings_part(**CHUNKED, part=2, num_parts=NUM_PARTS)
    assert again.equals(parts[2])
    other_seed = synthetic_ratings_part(**{**CHUNKED, "seed": 12}, part=2, num_parts=NUM_PARTS)
    assert not other_seed.equals(parts[2])
    # Parts are not copies of one another shifted in user id: their activity differs.
    sizes = {t.num_rows for t in parts}
    assert len(sizes) == NUM_PARTS


def test_parts_are_disjoint_in_users_and_cover_them_all(parts):
    user_sets = [set(t.column("user_id").to_numpy().tolist()) for t in parts]
    for a in range(NUM_PARTS):
        for b in range(a + 1, NUM_PARTS):
            assert not user_sets[a] & user_sets[b]
    assert set().union(*user_sets) == set(range(1, CHUNKED["num_users"] + 1))


def test_union_has_the_requested_size_and_no_repeated_pair(parts):
    table = pa.concat_tables(parts)
    expected = CHUNKED["num_users"] * CHUNKED["mean_ratings_per_user"]
    assert abs(table.num_rows - expected) < 0.02 * expected
    users, items, _, _ = _columns(table)
    pairs = np.unique(np.stack([users, items], axis=1), axis=0)
    assert len(pairs) == table.num_rows


def test_part_ids_ratings_and_timestamps_in_range(parts):
    for table in parts:
        assert table.schema == synthetic_ratings(**SMALL).schema
        users, items, ratings, timestamps = _columns(table)
        assert users.min() >= 1 and users.max() <= CHUNKED["num_users"]
        assert items.min() >= 1 and items.max() <= 3 * CHUNKED["num_items"]
        assert set(np.unique(ratings).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
        assert np.unique(users, return_counts=True)[1].min() >= 5
        assert np.all(np.diff(users) >= 0), "rows are grouped by user"
        assert np.all(np.diff(timestamps)[np.diff(users) == 0] > 0)


def test_parts_share_one_catalogue_and_the_star_shares(parts):
    # The item side comes from the seed alone: every part has the same most popular item,
    # draws its items from one catalogue, and its stars from the same cuts.
    top = [np.bincount(t.column("item_id").to_numpy()).argmax() for t in parts]
    assert len(set(top)) == 1
    catalogue = [set(t.column("item_id").to_numpy().tolist()) for t in parts]
    assert len(catalogue[0] & catalogue[1]) > 0.5 * len(catalogue[0] | catalogue[1])
    table = pa.concat_tables(parts)
    ratings = table.column("rating").to_numpy().astype(np.int64)
    shares = np.bincount(ratings, minlength=6)[1:] / ratings.size
    np.testing.assert_allclose(shares, [0.061, 0.114, 0.271, 0.342, 0.212], atol=0.03)


def test_part_popularity_and_activity_are_heavy_tailed(parts):
    table = pa.concat_tables(parts)
    users, items, _, _ = _columns(table)
    counts = np.sort(np.unique(items, return_counts=True)[1])[::-1]
    assert counts[: counts.size // 10].sum() / counts.sum() > 0.35
    per_user = np.unique(users, return_counts=True)[1]
    assert per_user.max() > 8 * np.median(per_user)


def test_planted_low_rank_signal_is_recoverable_from_one_part():
    table = synthetic_ratings_part(**{**SMALL, "num_users": 600}, part=1, num_parts=2)
    rmse = _heldout_rmse(table, rank=SMALL["rank"])
    assert rmse["low_rank"] < 0.85 * rmse["biases"], rmse


def test_more_parts_than_users_gives_empty_parts():
    tables = [
        synthetic_ratings_part(**{**CHUNKED, "num_users": 3}, part=p, num_parts=5) for p in range(5)
    ]
    assert [t.num_rows > 0 for t in tables].count(True) == 3
    assert all(t.schema == tables[0].schema for t in tables)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(part=-1),
        dict(part=NUM_PARTS),
        dict(num_parts=0),
        dict(seed=-1),
        dict(num_items=9),
        dict(mean_ratings_per_user=4.0),
    ],
)
def test_part_invalid_arguments_are_rejected(kwargs):
    with pytest.raises(InputError):
        synthetic_ratings_part(**{**CHUNKED, "part": 0, "num_parts": NUM_PARTS, **kwargs})


def test_ml20m_like_size_keeps_the_activity_and_grows_the_catalogue():
    full = ml20m_like_size(13_300_000)
    assert full == {"num_users": 138_542, "num_items": 27_000, "mean_ratings_per_user": 96.0}
    small = ml20m_like_size(1_000_000)
    assert small["num_users"] * small["mean_ratings_per_user"] == pytest.approx(1e6, rel=1e-3)
    assert 3_000 < small["num_items"] < 7_000
    with pytest.raises(InputError):
        ml20m_like_size(10)
