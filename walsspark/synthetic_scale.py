"""Synthetic ratings at scale: MovieLens-20M-shaped sets generated in parts.

Data sets too large for one process (the scale benchmark's millions of ratings) come in parts:
:func:`synthetic_ratings_part` generates the users of one part, with the item side (popularity,
ids, planted factors) and the star cuts derived from the seed alone so every part agrees, and
:func:`synthetic_ratings_frame` runs one part per Spark task, so the whole set never exists in
one process. :func:`ml20m_like_size` gives MovieLens-20M-shaped sizes for a number of ratings.

Examples
--------
>>> part = synthetic_ratings_part(2000, 1000, part=0, num_parts=4, mean_ratings_per_user=20)
>>> part.column_names
['user_id', 'item_id', 'rating', 'timestamp']
>>> ml20m_like_size(13_300_000)["num_users"]
138542

With Spark (one task per part)::

    frame = synthetic_ratings_frame(spark, num_parts=16, **ml20m_like_size(4_000_000))
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from walsspark.errors import InputError

# The item and user models, star shares and activity law of the one-process generator:
# the parts draw from the same distributions.
from walsspark.synthetic import (
    _INTERACTION_SD,
    _ITEM_BIAS_SD,
    _ITEM_ZIPF_EXPONENT,
    _NOISE_SD,
    _STAR_SHARES,
    _USER_BIAS_SD,
    _check_sizes,
    _timestamps,
    _user_activity,
)

__all__ = ["ml20m_like_size", "synthetic_ratings_frame", "synthetic_ratings_part"]

# The chunked generator's sampler draws at most this many candidate items per round (about
# 40 bytes each across its temporaries), so a part's memory stays near 100 MB plus its output.
_MAX_ROUND_DRAWS = 2_000_000

# The star cuts of the chunked generator come from a reference sample of about this many
# ratings (seeded by the seed alone): enough to place the cuts within a fraction of a percent
# of the shares, cheap enough to repeat in every part.
_REFERENCE_RATINGS = 200_000

# Streams of the chunked generator's random numbers, all derived from the seed: the item side
# (shared by every part), the reference sample of the star cuts, and each part's users.
_ITEM_STREAM, _REFERENCE_STREAM, _PART_STREAM = 0, 1, 2

# MovieLens 20M's shape at the scale benchmark's 13.3M ratings: 138k users with about 96
# ratings each and a catalogue of 27k items.
_ML20M_RATINGS = 13_300_000
_ML20M_ITEMS = 27_000
_ML20M_RATINGS_PER_USER = 96.0
# Catalogues grow more slowly than rating counts: MovieLens 1M has 3.7k items, 20M has 27k,
# 20 times the ratings for 7.2 times the items, about ratings ** (2 / 3).
_CATALOGUE_EXPONENT = 2.0 / 3.0

# Columns of every generated table (and of the Spark frame), in order.
SYNTHETIC_SCHEMA = "user_id long, item_id long, rating float, timestamp long"


def ml20m_like_size(num_ratings: int) -> dict[str, int | float]:
    """Users, items and mean activity of a MovieLens-20M-shaped set of ``num_ratings``.

    At 13.3M ratings: 138k users x 27k items, about 96 ratings per user. Smaller sizes keep
    the mean activity and shrink the catalogue as ``num_ratings ** (2/3)`` (MovieLens 1M,
    with 1/20 of the ratings of 20M, has 1/7 of its items): 4.8k items at 1M ratings.

    Parameters
    ----------
    num_ratings : int
        Target number of ratings; the generators realize it within about a percent.

    Returns
    -------
    dict
        ``num_users``, ``num_items`` and ``mean_ratings_per_user``, keyword arguments of
        :func:`synthetic_ratings_part` and :func:`synthetic_ratings_frame`.

    Raises
    ------
    walsspark.errors.InputError
        If ``num_ratings`` is below the mean activity of one user.

    Examples
    --------
    >>> ml20m_like_size(1_000_000)
    {'num_users': 10417, 'num_items': 4810, 'mean_ratings_per_user': 96.0}
    """
    if num_ratings < _ML20M_RATINGS_PER_USER:
        raise InputError(
            f"num_ratings must be at least {_ML20M_RATINGS_PER_USER:.0f}, got {num_ratings}"
        )
    scale = (num_ratings / _ML20M_RATINGS) ** _CATALOGUE_EXPONENT
    # Every user must be able to rate its mean without exhausting half the catalogue.
    num_items = max(round(_ML20M_ITEMS * scale), 4 * int(_ML20M_RATINGS_PER_USER))
    return {
        "num_users": round(num_ratings / _ML20M_RATINGS_PER_USER),
        "num_items": num_items,
        "mean_ratings_per_user": _ML20M_RATINGS_PER_USER,
    }


def synthetic_ratings_part(
    num_users: int,
    num_items: int,
    part: int,
    num_parts: int,
    rank: int = 8,
    mean_ratings_per_user: float = 40.0,
    seed: int = 42,
) -> pa.Table:
    """The ratings of the users in one part of a synthetic set too large for one process.

    The model is that of :func:`synthetic_ratings` (Zipf item popularity, power-law user
    activity of at least five ratings, a planted rank-``rank`` taste plus biases and noise, cut
    into MovieLens star shares), generated so that the parts can be made independently:

    - users ``1..num_users`` are split into ``num_parts`` contiguous ranges; part ``part`` has
      users ``num_users * part // num_parts + 1`` to ``num_users * (part + 1) // num_parts``;
    - the item side (popularity, ids, planted factors and biases) and the star cuts come from
      ``seed`` alone, so every part sees the same catalogue; the cuts are quantiles of a
      reference sample drawn from the same model;
    - a part's users (activity, items, factors, timestamps) come from ``(seed, part)``.

    A part thus depends on ``num_parts`` too (it fixes which users it holds), and the union of
    the parts is not the table :func:`synthetic_ratings` returns for the same arguments.
    Items are drawn without replacement with probability proportional to popularity, as
    there, by drawing with replacement and skipping repeats, which costs a few draws per
    rating instead of one draw per catalogue item and user.

    Parameters
    ----------
    num_users : int
        Number of users of the whole set (all parts).
    num_items : int
        Size of the catalogue; ids are distinct positive integers in ``1..3*num_items``.
    part : int
        Which part, ``0 <= part < num_parts``.
    num_parts : int
        Number of parts of the whole set; a part may be empty when it exceeds ``num_users``.
    rank : int, default 8
        Dimension of the planted user and item latent vectors.
    mean_ratings_per_user : float, default 40.0
        Target mean number of ratings per user, between 5 and ``num_items // 2``; each part
        is fitted to it, so the whole set has about ``num_users * mean_ratings_per_user``.
    seed : int, default 42
        Seed (>= 0) of the whole set; the same arguments always give an identical table.

    Returns
    -------
    pyarrow.Table
        The schema of :func:`synthetic_ratings` (``user_id``, ``item_id``, ``rating`` float32
        whole stars 1..5, ``timestamp``), rows sorted by user, then timestamp; no (user, item)
        pair repeats.

    Raises
    ------
    walsspark.errors.InputError
        For the invalid sizes :func:`synthetic_ratings` refuses, ``num_parts < 1``, ``part``
        outside ``[0, num_parts)`` or a negative seed.

    Examples
    --------
    >>> parts = [synthetic_ratings_part(1000, 500, p, 3, mean_ratings_per_user=10, seed=1)
    ...          for p in range(3)]
    >>> sum(t.num_rows for t in parts) > 9000
    True
    """
    max_per_user = _check_sizes(num_users, num_items, rank, mean_ratings_per_user)
    if isinstance(num_parts, bool) or not isinstance(num_parts, int) or num_parts < 1:
        raise InputError(f"num_parts must be an integer >= 1, got {num_parts!r}")
    if isinstance(part, bool) or not isinstance(part, int) or not 0 <= part < num_parts:
        raise InputError(f"part must be an integer in [0, {num_parts}), got {part!r}")
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")

    items = _item_model(num_items, rank, seed)
    cuts = _reference_cuts(items, num_users, mean_ratings_per_user, max_per_user, rank, seed)

    first = num_users * part // num_parts
    part_users = num_users * (part + 1) // num_parts - first
    if part_users == 0:
        return _empty_table()
    rng = np.random.default_rng([seed, _PART_STREAM, part])
    counts = _user_activity(rng, part_users, mean_ratings_per_user, max_per_user)
    user_index, item_index = _sample_pairs_by_rejection(rng, counts, items["cdf"])
    user_vecs, user_bias = _user_model(rng, part_users, rank)
    scores = _scores(rng, user_index, item_index, user_vecs, user_bias, items)
    ratings = (np.searchsorted(cuts, scores, side="right") + 1).astype(np.float32)
    timestamps = _timestamps(rng, counts)

    # Random order within a user, as in synthetic_ratings: the sampler's order favours
    # popular items, and timestamps follow the row order.
    order = np.lexsort((rng.random(user_index.size), user_index))
    return pa.table(
        {
            "user_id": pa.array(user_index[order] + (first + 1), type=pa.int64()),
            "item_id": pa.array(items["ids"][item_index[order]], type=pa.int64()),
            "rating": pa.array(ratings[order], type=pa.float32()),
            "timestamp": pa.array(timestamps, type=pa.int64()),
        }
    )


def synthetic_ratings_frame(
    spark,
    num_users: int,
    num_items: int,
    num_parts: int,
    rank: int = 8,
    mean_ratings_per_user: float = 40.0,
    seed: int = 42,
):
    """A large synthetic ratings set as a Spark DataFrame, generated on the executors.

    One task per part (``spark.range(num_parts, numPartitions=num_parts).mapInArrow``), each
    calling :func:`synthetic_ratings_part`: the driver never holds the data, and the tasks
    only need walsspark importable where they run. Deterministic for given arguments, so
    recomputing a lost partition gives the same rows.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        A classic or Spark Connect session.
    num_users, num_items, rank, mean_ratings_per_user, seed
        As in :func:`synthetic_ratings_part`.
    num_parts : int
        Number of parts, hence of partitions and tasks; a few hundred thousand ratings a part
        keeps each task's memory around 100 MB.

    Returns
    -------
    pyspark.sql.DataFrame
        Columns ``user_id`` (long), ``item_id`` (long), ``rating`` (float), ``timestamp``
        (long), one partition per part.

    Raises
    ------
    walsspark.errors.InputError
        For invalid sizes (checked here, on the driver, before any task runs).

    Examples
    --------
    >>> frame = synthetic_ratings_frame(spark, num_parts=8, **ml20m_like_size(1_000_000))
    ... # doctest: +SKIP
    """
    # Validate once on the driver: a bad size would otherwise fail inside every task.
    _check_sizes(num_users, num_items, rank, mean_ratings_per_user)
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    if isinstance(num_parts, bool) or not isinstance(num_parts, int) or num_parts < 1:
        raise InputError(f"num_parts must be an integer >= 1, got {num_parts!r}")

    def generate(batches):
        for batch in batches:
            for part in batch.column(0).to_pylist():
                table = synthetic_ratings_part(
                    num_users, num_items, part, num_parts, rank, mean_ratings_per_user, seed
                )
                # Batches of 64k rows keep the Arrow buffers the JVM converts small.
                yield from table.to_batches(max_chunksize=65_536)

    return spark.range(0, num_parts, 1, num_parts).mapInArrow(generate, SYNTHETIC_SCHEMA)


def _empty_table() -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array([], pa.int64()),
            "item_id": pa.array([], pa.int64()),
            "rating": pa.array([], pa.float32()),
            "timestamp": pa.array([], pa.int64()),
        }
    )


def _item_model(num_items: int, rank: int, seed: int) -> dict[str, np.ndarray]:
    """The item side of the chunked generator, a function of the seed alone.

    Popularity (Zipf, shuffled against the ids) and its cumulative sum for the sampler, the
    ids, the planted factors and biases (a third of the bias tied to log-popularity), as in
    :func:`synthetic_ratings`.
    """
    rng = np.random.default_rng([seed, _ITEM_STREAM])
    popularity = 1.0 / np.arange(1, num_items + 1, dtype=np.float64) ** _ITEM_ZIPF_EXPONENT
    popularity = rng.permutation(popularity)
    popularity /= popularity.sum()
    ids = np.sort(rng.choice(np.arange(1, 3 * num_items + 1), size=num_items, replace=False))
    vecs = rng.normal(0.0, _factor_sd(rank), size=(num_items, rank))
    log_pop = np.log(popularity)
    log_pop_z = (log_pop - log_pop.mean()) / (log_pop.std() or 1.0)
    bias = _ITEM_BIAS_SD * (
        np.sqrt(1 / 3) * log_pop_z + np.sqrt(2 / 3) * rng.normal(size=num_items)
    )
    cdf = np.cumsum(popularity)
    cdf /= cdf[-1]  # exactly 1 at the end, so a uniform draw always lands on an item
    return {"ids": ids.astype(np.int64), "cdf": cdf, "vecs": vecs, "bias": bias}


def _factor_sd(rank: int) -> float:
    # Scaling each factor by rank**-0.25 keeps the interaction's spread independent of rank.
    return _INTERACTION_SD**0.5 * rank**-0.25


def _user_model(rng: np.random.Generator, num_users: int, rank: int):
    """Planted user factors and biases."""
    vecs = rng.normal(0.0, _factor_sd(rank), size=(num_users, rank))
    bias = rng.normal(0.0, _USER_BIAS_SD, size=num_users)
    return vecs, bias


def _scores(rng, user_index, item_index, user_vecs, user_bias, items) -> np.ndarray:
    """Latent scores of the pairs: biases + planted interaction + noise."""
    interaction = np.einsum("ij,ij->i", user_vecs[user_index], items["vecs"][item_index])
    noise = rng.normal(0.0, _NOISE_SD, size=user_index.size)
    return user_bias[user_index] + items["bias"][item_index] + interaction + noise


def _reference_cuts(
    items: dict, num_users: int, mean: float, max_per_user: int, rank: int, seed: int
) -> np.ndarray:
    """Star cuts every part shares: score quantiles of a reference sample from the seed.

    The reference users are drawn like real ones (activity, items without replacement), so
    the sample has the item mix of the data and the cuts reproduce the star shares.
    """
    rng = np.random.default_rng([seed, _REFERENCE_STREAM])
    num_reference = min(num_users, max(1, int(_REFERENCE_RATINGS // mean)))
    counts = _user_activity(rng, num_reference, mean, max_per_user)
    user_index, item_index = _sample_pairs_by_rejection(rng, counts, items["cdf"])
    user_vecs, user_bias = _user_model(rng, num_reference, rank)
    scores = _scores(rng, user_index, item_index, user_vecs, user_bias, items)
    return np.quantile(scores, np.cumsum(_STAR_SHARES)[:-1])


def _sample_pairs_by_rejection(
    rng: np.random.Generator, counts: np.ndarray, cdf: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``counts[u]`` distinct items per user with popularity weights, without replacement.

    The first ``counts[u]`` distinct items of a stream of weighted draws *with* replacement
    are a weighted sample without replacement (each repeat is a redraw from the items not yet
    taken, in proportion to their weights): the distribution of :func:`_sample_pairs`, at the
    cost of a few draws per rating rather than one key per (user, catalogue item). A user
    whose draws hold too few distinct items is drawn again from a fresh, longer stream; the
    fresh stream is independent of the failed one, so the distribution is unchanged.

    Returns
    -------
    tuple of numpy.ndarray
        Local user indices (non-decreasing) and item indices (int64), in draw order per user.
    """
    num_items = cdf.size
    users_out: list[np.ndarray] = []
    items_out: list[np.ndarray] = []
    pending = np.arange(counts.size, dtype=np.int64)
    # Light users need about 1.2 draws per rating with Zipf popularity; the factor doubles
    # for the users a round left short (the heaviest need several times their count).
    factor = 1.5
    while pending.size:
        draws = np.ceil(counts[pending] * factor).astype(np.int64) + 8
        # Rounds of at most _MAX_ROUND_DRAWS draws (a heavier single user gets a round alone).
        short: list[np.ndarray] = []
        start = 0
        while start < pending.size:
            budget = np.cumsum(draws[start:])
            stop = start + max(1, int(np.searchsorted(budget, _MAX_ROUND_DRAWS, side="right")))
            users, per_user = pending[start:stop], draws[start:stop]
            owner = np.repeat(users, per_user)
            picked = np.minimum(
                np.searchsorted(cdf, rng.random(owner.size), side="right"), num_items - 1
            )
            # First occurrence of every (user, item), back in draw order.
            first = np.sort(np.unique(owner * num_items + picked, return_index=True)[1])
            owner, picked = owner[first], picked[first]
            starts = np.searchsorted(owner, users)
            distinct = np.diff(np.append(starts, owner.size))
            rank_in_user = np.arange(owner.size) - np.repeat(starts, distinct)
            enough = distinct >= counts[users]
            keep = (rank_in_user < counts[owner]) & np.repeat(enough, distinct)
            users_out.append(owner[keep])
            items_out.append(picked[keep])
            short.append(users[~enough])
            start = stop
        pending = np.concatenate(short)
        factor *= 2.0
    user_index = np.concatenate(users_out)
    item_index = np.concatenate(items_out)
    # Users redrawn in a later round come after the others: restore user order (stable, so
    # each user's draw order stays).
    order = np.argsort(user_index, kind="stable")
    return user_index[order], item_index[order]
