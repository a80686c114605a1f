"""Deterministic synthetic MovieLens-like explicit ratings with a planted low-rank taste model.

The data set exists so the job, its tests and its benchmarks can run without downloading
anything, while still looking enough like real rating data to exercise the interesting paths:
a long-tailed item popularity (a few blockbusters, many rarely rated items), a long-tailed user
activity, non-contiguous item ids that must be re-indexed, integer star ratings skewed towards
3-4 stars, and per-user timestamps that a time-based split can use.  Because the ratings come
from known latent factors, a correct factorization must beat a popularity/bias-only baseline on
held-out data, which gives the tests a signal that a broken solver cannot fake.

Only numpy and pyarrow are used so the generator can run on the driver, in tests without Spark,
or from a command line tool that just writes a parquet file.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from walsspark.errors import InputError

__all__ = ["DEFAULT_SIZE", "synthetic_ratings", "write_ratings_parquet"]

#: Size of the embedded default data set of the main job: about 3000 users x 1500 items and
#: 120k ratings, large enough to be a meaningful smoke test, small enough to build in well under
#: a second on the driver.
DEFAULT_SIZE = dict(
    num_users=3000,
    num_items=1500,
    rank=8,
    mean_ratings_per_user=40.0,
    seed=42,
)

#: Every user has at least this many ratings, mirroring the MovieLens inclusion rule.
MIN_RATINGS_PER_USER = 5

# MovieLens-100k star shares for 1..5 stars (mean about 3.53); the latent scores are cut at
# these quantiles so the marginal distribution is realistic whatever the model's scale is.
_STAR_SHARES = np.array([0.061, 0.114, 0.271, 0.342, 0.212])

# Zipf exponent of item popularity: around 1 the top 10% of titles take roughly half or more of
# all ratings, which is what MovieLens shows.
_ITEM_ZIPF_EXPONENT = 1.0

# Lomax (Pareto II) shape of user activity: below 2 the variance is huge, so a handful of
# "power raters" exist next to a majority of users near the minimum, as in MovieLens.
_USER_ACTIVITY_SHAPE = 1.5

# Relative scale of the parts of the latent score.  The interaction term dominates so that a
# low-rank model is clearly better than biases alone, while the noise keeps it from being exact.
_USER_BIAS_SD = 0.5
_ITEM_BIAS_SD = 0.5
_INTERACTION_SD = 1.0
_NOISE_SD = 0.5

# Timestamps: users join between 2000-01-01 and 2015-01-01 and rate in sessions: mostly minutes
# apart, occasionally weeks apart.
_FIRST_START = 946_684_800
_LAST_START = 1_420_070_400
_SESSION_GAP_MEAN_S = 300.0
_BREAK_GAP_MEAN_S = 30 * 86_400.0
_BREAK_PROBABILITY = 0.05

# Upper bound on the number of float64 cells of one users x items block in the sampler, so the
# memory use stays around 16 MB whatever the requested size is.
_MAX_BLOCK_CELLS = 2_000_000


def synthetic_ratings(
    num_users: int = 3000,
    num_items: int = 1500,
    rank: int = 8,
    mean_ratings_per_user: float = 40.0,
    seed: int = 42,
) -> pa.Table:
    """Generate a deterministic MovieLens-like explicit ratings table.

    Each user and item gets a latent vector of dimension `rank` and a bias; the score of a
    (user, item) pair is ``user_bias + item_bias + dot(user_vec, item_vec) + noise``, and scores
    are cut into 1..5 stars at quantiles that reproduce the MovieLens star distribution.
    Which items a user rates is drawn without replacement with Zipf-like item popularity, and
    how many with a power-law activity of at least five ratings.

    Parameters
    ----------
    num_users : int, default 3000
        Number of users; user ids are ``1..num_users`` and every user has ratings.
    num_items : int, default 1500
        Size of the item catalogue.  Ids are distinct positive integers spread over
        ``1..3*num_items`` (not contiguous); rarely popular items may never be rated and then do
        not appear in the table.
    rank : int, default 8
        Dimension of the planted user and item latent vectors.
    mean_ratings_per_user : float, default 40.0
        Target mean number of ratings per user; the realized mean is within a fraction of a
        rating of it.  Must lie between 5 and half the catalogue.
    seed : int, default 42
        Seed of the random generator; the same arguments always give an identical table.

    Returns
    -------
    pyarrow.Table
        Columns ``user_id`` (int64), ``item_id`` (int64), ``rating`` (float32, whole stars
        1..5) and ``timestamp`` (int64, Unix seconds).  Rows are sorted by user and then by
        timestamp, which strictly increases within each user.  No (user, item) pair repeats.

    Raises
    ------
    walsspark.errors.InputError
        If a size is not positive, the catalogue is too small for five ratings per user, or the
        requested mean activity is outside ``[5, num_items // 2]``.

    Examples
    --------
    >>> table = synthetic_ratings(num_users=50, num_items=100, mean_ratings_per_user=10, seed=1)
    >>> table.column_names
    ['user_id', 'item_id', 'rating', 'timestamp']
    """
    max_per_user = _check_sizes(num_users, num_items, rank, mean_ratings_per_user)
    rng = np.random.default_rng(seed)

    # Popularity rank is shuffled against the id so ids carry no information about popularity,
    # as in real catalogues.
    item_popularity = 1.0 / np.arange(1, num_items + 1, dtype=np.float64) ** _ITEM_ZIPF_EXPONENT
    item_popularity = rng.permutation(item_popularity)
    item_popularity /= item_popularity.sum()
    item_ids = np.sort(rng.choice(np.arange(1, 3 * num_items + 1), size=num_items, replace=False))

    counts = _user_activity(rng, num_users, mean_ratings_per_user, max_per_user)
    user_index, item_index = _sample_pairs(rng, counts, item_popularity)

    ratings = _star_ratings(rng, user_index, item_index, num_users, item_popularity, rank)
    timestamps = _timestamps(rng, counts)

    # Rating order within a user is random, not the sampler's popularity-biased order, so that a
    # time-based split does not hold out systematically unpopular items.
    within_user = rng.random(user_index.size)
    order = np.lexsort((within_user, user_index))
    user_index, item_index, ratings = user_index[order], item_index[order], ratings[order]

    return pa.table(
        {
            "user_id": pa.array(user_index.astype(np.int64) + 1, type=pa.int64()),
            "item_id": pa.array(item_ids[item_index].astype(np.int64), type=pa.int64()),
            "rating": pa.array(ratings, type=pa.float32()),
            "timestamp": pa.array(timestamps, type=pa.int64()),
        }
    )


def write_ratings_parquet(table: pa.Table, path: str) -> None:
    """Write a ratings table to one parquet file, creating missing parent directories.

    Parameters
    ----------
    table : pyarrow.Table
        Table to write, typically from :func:`synthetic_ratings`.
    path : str
        Destination file path; an existing file is overwritten.
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    pq.write_table(table, path)


def _user_activity(
    rng: np.random.Generator, num_users: int, mean: float, max_per_user: int
) -> np.ndarray:
    """Draw power-law ratings-per-user counts in ``[5, max_per_user]`` with the requested mean."""
    raw = rng.pareto(_USER_ACTIVITY_SHAPE, size=num_users)
    excess_target = mean - MIN_RATINGS_PER_USER
    if excess_target <= 0 or raw.sum() == 0:
        return np.full(num_users, MIN_RATINGS_PER_USER, dtype=np.int64)
    # Capping heavy users at the catalogue limit lowers the mean, so the scale is refit a few
    # times; it converges quickly because only the tail is affected.
    scale = excess_target / raw.mean()
    excess = raw
    for _ in range(20):
        excess = np.minimum(raw * scale, max_per_user - MIN_RATINGS_PER_USER)
        realized = excess.mean()
        if realized <= 0 or abs(realized - excess_target) < 1e-3:
            break
        scale *= excess_target / realized
    return MIN_RATINGS_PER_USER + np.rint(excess).astype(np.int64)


def _sample_pairs(
    rng: np.random.Generator, counts: np.ndarray, popularity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``counts[u]`` distinct items per user, weighted by item popularity.

    Uses the exponential-keys form of weighted sampling without replacement
    (Efraimidis-Spirakis): the items with the smallest ``Exp(1) / weight`` keys are a weighted
    sample without replacement, so a whole block of users is drawn at once and duplicates cannot
    occur by construction.
    """
    num_users, num_items = counts.size, popularity.size
    block_rows = max(1, _MAX_BLOCK_CELLS // num_items)
    users_out: list[np.ndarray] = []
    items_out: list[np.ndarray] = []
    for start in range(0, num_users, block_rows):
        block_counts = counts[start : start + block_rows]
        keys = rng.exponential(size=(block_counts.size, num_items)) / popularity
        kmax = int(block_counts.max())
        # Partition first so only the kmax smallest keys per row get sorted.
        if kmax < num_items:
            candidates = np.argpartition(keys, kmax - 1, axis=1)[:, :kmax]
        else:
            candidates = np.broadcast_to(np.arange(num_items), keys.shape)
        candidate_keys = np.take_along_axis(keys, candidates, axis=1)
        ranked = np.take_along_axis(candidates, np.argsort(candidate_keys, axis=1), axis=1)
        keep = np.arange(kmax) < block_counts[:, None]
        rows = np.broadcast_to(np.arange(start, start + block_counts.size)[:, None], keep.shape)
        users_out.append(rows[keep])
        items_out.append(ranked[keep])
    return np.concatenate(users_out), np.concatenate(items_out)


def _star_ratings(
    rng: np.random.Generator,
    user_index: np.ndarray,
    item_index: np.ndarray,
    num_users: int,
    popularity: np.ndarray,
    rank: int,
) -> np.ndarray:
    """Score each pair with the planted model and cut the scores into 1..5 stars."""
    num_items = popularity.size
    # Scaling each factor by rank**-0.25 keeps the interaction's spread independent of rank.
    factor_sd = _INTERACTION_SD**0.5 * rank**-0.25
    user_vecs = rng.normal(0.0, factor_sd, size=(num_users, rank))
    item_vecs = rng.normal(0.0, factor_sd, size=(num_items, rank))
    user_bias = rng.normal(0.0, _USER_BIAS_SD, size=num_users)
    # Popular titles are rated somewhat higher in real data; tie a third of the item bias to
    # log-popularity so that effect is present too.
    log_pop = np.log(popularity)
    log_pop_z = (log_pop - log_pop.mean()) / (log_pop.std() or 1.0)
    item_bias = _ITEM_BIAS_SD * (
        np.sqrt(1 / 3) * log_pop_z + np.sqrt(2 / 3) * rng.normal(size=num_items)
    )
    interaction = np.einsum("ij,ij->i", user_vecs[user_index], item_vecs[item_index])
    noise = rng.normal(0.0, _NOISE_SD, size=user_index.size)
    scores = user_bias[user_index] + item_bias[item_index] + interaction + noise
    cuts = np.quantile(scores, np.cumsum(_STAR_SHARES)[:-1])
    return (np.searchsorted(cuts, scores, side="right") + 1).astype(np.float32)


def _timestamps(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """Strictly increasing per-user Unix timestamps, laid out user by user like ``counts``."""
    total = int(counts.sum())
    starts = rng.integers(_FIRST_START, _LAST_START, size=counts.size)
    is_break = rng.random(total) < _BREAK_PROBABILITY
    gaps = np.where(
        is_break,
        rng.exponential(_BREAK_GAP_MEAN_S, size=total),
        rng.exponential(_SESSION_GAP_MEAN_S, size=total),
    )
    # At least one second between ratings keeps timestamps strictly increasing per user.
    gaps = np.floor(gaps).astype(np.int64) + 1
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    gaps[offsets] = 0  # the first rating of each user happens at the user's start time
    cumulative = np.cumsum(gaps)
    within_user = cumulative - np.repeat(cumulative[offsets], counts)
    return np.repeat(starts, counts) + within_user


def _check_sizes(num_users: int, num_items: int, rank: int, mean_ratings_per_user: float) -> int:
    """Raise :class:`InputError` for sizes no generator accepts; return the per-user cap."""
    max_per_user = num_items // 2
    if num_users < 1:
        raise InputError(f"num_users must be at least 1, got {num_users}")
    if rank < 1:
        raise InputError(f"rank must be at least 1, got {rank}")
    if max_per_user < MIN_RATINGS_PER_USER:
        raise InputError(
            f"num_items must be at least {2 * MIN_RATINGS_PER_USER} so every user can have "
            f"{MIN_RATINGS_PER_USER} ratings, got {num_items}"
        )
    if not MIN_RATINGS_PER_USER <= mean_ratings_per_user <= max_per_user:
        raise InputError(
            f"mean_ratings_per_user must be between {MIN_RATINGS_PER_USER} and "
            f"num_items // 2 = {max_per_user}, got {mean_ratings_per_user}"
        )
    return max_per_user
