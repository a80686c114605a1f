"""Block layout on Spark: rating blocks, id maps and routes, built in one pass per side.

How the ratings are laid out (after Spark MLlib's ``ALS.scala``, with DataFrames + Arrow)
----------------------------------------------------------------------------------------
Every user id goes to block ``pmod(xxhash64(id), B_users)``, every item id to
``pmod(xxhash64(id), B_items)``. Within a block, an id's *local index* is its rank in id
order. Because that order is a property of the ids alone, a task holding all ratings of one
user block can work out everything it needs without any global index or id map:

* its own ids, sorted (its id map), and their initial-factor hashes ``xxhash64(seed, id)``;
* its CSR matrix, whose column indices point into its *needed* list: the distinct
  (item block, item id) pairs its ratings touch, in (block, id) order. That is exactly the
  order in which the item blocks will send those factors, since each item block sends its
  factors in its own local-index order, which is id order;
* its *outgoing routes*: for every item block, the local indices of its users that the item
  block rates (the item block's needed list, restricted to this user block).

The item side is built the same way from the same ratings. So the layout is one
repartition by block and one ``mapInArrow`` over the ratings per side: ids are never
collected to the driver, no single-partition window or join is needed, and nothing is
indexed twice.

Held-out pairs can ride along (``lay_out(..., holdout)``): they never enter the training
CSR, but the user blocks route the factors they need to the item blocks, and each item
block keeps a CSR of its held-out pairs, which the item half-sweep scores.

Partitioning
------------
Block b is grouped under a partition key ``pkey`` chosen so that Spark's hash partitioning
(``pmod(hash(pkey), P)``) sends block b to partition b mod P. With the hash of the block
number itself two of two blocks often share a partition, and one task solves both while
the other core idles; the chosen keys give every block a task of its own. Rating blocks are
cached hash-partitioned by ``pkey``, so a half-sweep's cogroup shuffles only the routed
factors, never the ratings.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from walsspark.factors import encode_array

# One row per block: its ids in local-index order, their initial-factor hashes, the CSR of
# its ratings (columns index the block's needed list: the distinct (other block, other id)
# pairs it rates, in that order; the list itself is implicit) and its outgoing routes: to
# the block of the other side with partition key route_dst_pkeys[r] go the factors of local
# rows route_indices[route_offsets[r]:route_offsets[r + 1]]. ``confidences`` (per entry, in
# CSR order) is null unless the objective weighs entries differently (walsspark.weighting).
# ``needed_ids`` spells the needed list out as the other side's ids, so that the block
# doubles as the exclusion list of recommendations (walsspark.recommend): its CSR is
# exactly the pairs trained on. ``other_counts`` (per entry, in CSR order) is the training
# frequency of each entry's other-side id, laid out when the ratings carry ``user_count`` and
# ``item_count`` (walsspark.popularity); null otherwise.
# With held-out pairs laid out for scoring (``holdout_role="score"``), ``holdout_indptr``,
# ``holdout_cols``, ``holdout_targets``, ``holdout_confidences`` and ``holdout_other_counts``
# are the CSR of the block's
# held-out pairs, their columns indexing the same needed list; null otherwise.
BLOCK_FIELDS = (
    "block int, pkey int, n_rows int, nnz long, indptr binary, cols binary, targets binary, "
    "confidences binary, other_counts binary, init_hashes binary, route_dst_pkeys binary, "
    "route_offsets binary, route_indices binary, holdout_indptr binary, holdout_cols binary, "
    "holdout_targets binary, holdout_confidences binary, holdout_other_counts binary"
)


def block_schema(id_type: str, other_id_type: str) -> str:
    """The Spark schema of a rating block of ``id_type`` ids rating ``other_id_type`` ids."""
    return f"{BLOCK_FIELDS}, ids array<{id_type}>, needed_ids array<{other_id_type}>"


@dataclass
class SideLayout:
    """One side (users or items) of the factorization as laid out on Spark.

    Attributes
    ----------
    name : str
        ``"user"`` or ``"item"``.
    num_blocks : int
    rating_blocks : DataFrame
        One row per block (:func:`block_schema`), hash-partitioned by ``pkey``, cached
        (:meth:`SideLayout.release` frees it).
    pkeys : list of int
        Partition key of each block.
    id_type : str
        Spark type of the original ids (``bigint`` or ``string``).
    """

    name: str
    num_blocks: int
    rating_blocks: DataFrame
    pkeys: list[int]
    id_type: str

    _num_ids: int | None = field(default=None, init=False, repr=False)
    _histogram: dict[int, int] | None = field(default=None, init=False, repr=False)

    def num_ids(self) -> int:
        """Number of distinct ids on this side (from the cached blocks; counted once)."""
        if self._num_ids is None:
            self._num_ids = int(self.rating_blocks.agg(F.sum("n_rows")).collect()[0][0] or 0)
        return self._num_ids

    def count_histogram(self) -> dict[int, int]:
        """{training frequency: ids with it} of this side (from the cached blocks; once)."""
        if self._histogram is None:
            from walsspark.popularity import count_histogram

            self._histogram = count_histogram(self.rating_blocks)
        return self._histogram

    def release(self) -> None:
        """Drop the cached rating blocks (the side cannot be trained or exported after)."""
        self.rating_blocks.unpersist()


def _spark_hash_int(value: int) -> int:
    """Spark SQL's ``hash()`` of an int: Murmur3 x86_32 with seed 42 (``hashInt``)."""
    mask = 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    k1 = (value & mask) * 0xCC9E2D51 & mask
    k1 = rotl(k1, 15) * 0x1B873593 & mask
    h1 = rotl(42 ^ k1, 13)
    h1 = (h1 * 5 + 0xE6546B64) & mask
    h1 ^= 4
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & mask
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & mask
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def partition_keys(num_blocks: int) -> list[int]:
    """Keys k_b with pmod(hash(k_b), num_blocks) == b, so every block gets its own task.

    ``repartition(num_blocks, "pkey")`` places a row in partition pmod(hash(pkey), P);
    searching small ints for one key per residue gives each block its own partition.
    """
    keys: dict[int, int] = {}
    candidate = 0
    while len(keys) < num_blocks:
        keys.setdefault(_spark_hash_int(candidate) % num_blocks, candidate)
        candidate += 1
    return [keys[b] for b in range(num_blocks)]


def pkey_column(pkeys: list[int], block):
    """Column expression: the partition key of a block number (a column name or Column)."""
    number = F.col(block) if isinstance(block, str) else block
    return F.element_at(F.array(*[F.lit(k) for k in pkeys]), number + 1)


def _sorted_positions(values: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Distinct values in sorted order, and each input value's position among them."""
    distinct = pc.unique(values)
    distinct = distinct.take(pc.sort_indices(distinct))
    positions = pc.index_in(values, value_set=distinct).to_numpy(zero_copy_only=False)
    return distinct, positions.astype(np.int64)


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """The distinct values of an int64 array, ascending.

    A sort and a comparison of neighbours: for millions of mostly distinct keys this took
    0.12 s where ``np.unique`` (hash-based in numpy 2.4) took 2.2 s.
    """
    ordered = np.sort(keys)
    if len(ordered) == 0:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _csr_fields(
    prefix: str,
    rows: np.ndarray,
    cols: np.ndarray,
    targets: np.ndarray,
    confidences: np.ndarray | None,
    other_counts: np.ndarray | None,
    n_rows: int,
) -> dict[str, pa.Array]:
    """A CSR (entries sorted by row, then column) as the block row's binary fields."""
    # One int64 key per entry (row, column < 2^31): argsort of it took 0.25 s for 1.9M
    # entries, lexsort of the two columns 0.66 s.
    order = np.argsort((rows.astype(np.int64) << 32) | cols.astype(np.int64), kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return {
        f"{prefix}indptr": _binary(indptr, "<i8"),
        f"{prefix}cols": _binary(cols[order], "<i4"),
        f"{prefix}targets": _binary(targets[order], "<f4"),
        f"{prefix}confidences": _optional_binary(confidences, order),
        f"{prefix}other_counts": _optional_binary(other_counts, order),
    }


def _optional_binary(values: np.ndarray | None, order: np.ndarray) -> pa.Array:
    """float32 ``values`` in ``order`` as one binary, or a null when there are none."""
    return pa.array([None], pa.binary()) if values is None else _binary(values[order], "<f4")


_NO_HOLDOUT = {
    name: pa.array([None], pa.binary())
    for name in (
        "holdout_indptr",
        "holdout_cols",
        "holdout_targets",
        "holdout_confidences",
        "holdout_other_counts",
    )
}


def _block_builder(pkeys: list[int], other_pkeys: list[int], holdout_role: str | None):
    """Arrow function turning all ratings of one block into that block's single row.

    Held-out pairs (rows with ``held_out`` true) never enter the training CSR. With
    ``holdout_role="send"`` they add routes (this block sends the other side the factors it
    needs to score them); with ``"score"`` they add to the needed list and get a CSR of their
    own, scored by the half-sweep that solves this block.
    """

    def build(table: pa.Table) -> pa.Table:
        block = int(table.column("block")[0].as_py())
        ids, rows = _sorted_positions(table.column("id"))
        n_rows = len(ids)
        other_ids, other_rank = _sorted_positions(table.column("other_id"))
        other_block = table.column("other_block").to_numpy().astype(np.int64)
        targets = table.column("rating").to_numpy().astype(np.float32)
        confidences = None
        if "confidence" in table.column_names:
            confidences = table.column("confidence").to_numpy().astype(np.float32)
        other_counts = None
        if "other_count" in table.column_names:
            other_counts = table.column("other_count").to_numpy().astype(np.float32)
        init_hashes = np.zeros(n_rows, dtype=np.int64)
        init_hashes[rows] = table.column("init_hash").to_numpy()
        held = (
            table.column("held_out").to_numpy(zero_copy_only=False).astype(bool)
            if "held_out" in table.column_names
            else np.zeros(len(rows), dtype=bool)
        )
        train = ~held
        pair_keys = (other_block << 32) | other_rank

        # Needed list in (other block, other id) order; the CSR columns index into it.
        needed_from = held | train if holdout_role == "score" else train
        needed = _sorted_unique(pair_keys[needed_from])
        cols = np.searchsorted(needed, pair_keys).astype(np.int32)
        needed_ids = other_ids.take(pa.array(needed & 0xFFFFFFFF))

        def subset(mask: np.ndarray) -> tuple:
            conf = None if confidences is None else confidences[mask]
            counts = None if other_counts is None else other_counts[mask]
            return rows[mask], cols[mask], targets[mask], conf, counts

        fields = _csr_fields("", *subset(train), n_rows)
        holdout_fields = (
            _csr_fields("holdout_", *subset(held), n_rows)
            if holdout_role == "score"
            else _NO_HOLDOUT
        )

        # Outgoing routes to the blocks of the other side that need rows of this one: the
        # rows each needs, in id order.
        route_from = held | train if holdout_role == "send" else train
        route_keys = _sorted_unique((other_block[route_from] << 32) | rows[route_from])
        route_blocks = route_keys >> 32
        route_rows = (route_keys & 0xFFFFFFFF).astype(np.int32)
        num_other = len(other_pkeys)
        offsets = np.searchsorted(route_blocks, np.arange(num_other + 1)).astype(np.int64)
        dst_pkeys = np.asarray(other_pkeys, dtype=np.int32)
        return pa.table(
            {
                "block": pa.array([block], pa.int32()),
                "pkey": pa.array([pkeys[block]], pa.int32()),
                "n_rows": pa.array([n_rows], pa.int32()),
                "nnz": pa.array([int(np.count_nonzero(train))], pa.int64()),
                **fields,
                "init_hashes": _binary(init_hashes, "<i8"),
                "route_dst_pkeys": _binary(dst_pkeys, "<i4"),
                "route_offsets": _binary(offsets, "<i8"),
                "route_indices": _binary(route_rows, "<i4"),
                **holdout_fields,
                "ids": pa.ListArray.from_arrays(pa.array([0, n_rows], pa.int32()), ids),
                "needed_ids": pa.ListArray.from_arrays(
                    pa.array([0, len(needed_ids)], pa.int32()), needed_ids
                ),
            }
        )

    return build


def _partition_builder(build):
    """mapInArrow function: all rows of a partition, one block row per block in it.

    A partition holds one block (see :func:`build_side`); should it hold several, each is
    built on its own, so the result never depends on the partitioning.
    """

    def build_partition(batches):
        batches = [batch for batch in batches if batch.num_rows]
        if not batches:
            return
        table = pa.Table.from_batches(batches)
        numbers = table.column("block").to_numpy()
        distinct = np.unique(numbers)
        for number in distinct:
            rows = table if len(distinct) == 1 else table.filter(pa.array(numbers == number))
            yield from build(rows).to_batches()

    return build_partition


def _binary(values: np.ndarray, dtype: str) -> pa.Array:
    return pa.array([encode_array(values, dtype)], pa.binary())


def build_side(
    ratings: DataFrame,
    side: str,
    num_blocks: int,
    pkeys: list[int],
    other_num_blocks: int,
    other_pkeys: list[int],
    seed: int,
    holdout: DataFrame | None = None,
    holdout_role: str | None = None,
) -> DataFrame:
    """Rating blocks of one side ("user" or "item"), partitioned by ``pkey`` (lazy).

    ``holdout``: held-out pairs whose user and item both have ratings, laid out as
    ``holdout_role`` says (see :func:`_block_builder`).
    """
    other = "item" if side == "user" else "user"
    id_type = _id_type(ratings, side)
    # Confidences when either has them: an entry without one weighs as c = 1.
    with_confidence = "confidence" in ratings.columns or (
        holdout is not None and "confidence" in holdout.columns
    )

    # The other side's training frequencies, when the unobserved weights follow popularity.
    with_counts = f"{other}_count" in ratings.columns

    def entries_of(frame: DataFrame, held_out: bool) -> DataFrame:
        confidence = F.col("confidence") if "confidence" in frame.columns else F.lit(1.0)
        return frame.select(
            "user",
            "item",
            "rating",
            *([confidence.cast("float").alias("confidence")] if with_confidence else []),
            *([F.col(f"{other}_count").cast("float").alias("other_count")] if with_counts else []),
            F.lit(held_out).alias("held_out"),
        )

    entries = entries_of(ratings, False)
    if holdout is not None:
        entries = entries.unionByName(entries_of(holdout, True))
    per_rating = entries.select(
        F.pmod(F.xxhash64(side), F.lit(num_blocks)).cast("int").alias("block"),
        F.col(side).alias("id"),
        F.xxhash64(F.lit(int(seed)).cast("long"), F.col(side)).alias("init_hash"),
        F.pmod(F.xxhash64(other), F.lit(other_num_blocks)).cast("int").alias("other_block"),
        F.col(other).alias("other_id"),
        F.col("rating").cast("float").alias("rating"),
        *(["confidence"] if with_confidence else []),
        *(["other_count"] if with_counts else []),
        "held_out",
    )
    # An explicit repartition (AQE would coalesce a plain groupBy's shuffle into one task),
    # which puts block b, and only it, in partition b (partition_keys); each partition is
    # then built as it comes, with mapInArrow. groupBy().applyInArrow sorted every
    # partition by its one key first: at 2M ratings a block, 4-5 s of JVM time per block
    # against 1 s for the build itself.
    blocks = (
        per_rating.withColumn("pkey", pkey_column(pkeys, "block"))
        .repartition(num_blocks, "pkey")
        .mapInArrow(
            _partition_builder(_block_builder(pkeys, other_pkeys, holdout_role)),
            block_schema(id_type, _id_type(ratings, other)),
        )
    )
    return blocks.repartition(num_blocks, "pkey")


def lay_out(
    ratings: DataFrame,
    num_user_blocks: int,
    num_item_blocks: int,
    seed: int,
    holdout: DataFrame | None = None,
) -> tuple[SideLayout, SideLayout]:
    """Build the rating blocks of both sides.

    Parameters
    ----------
    ratings : DataFrame
        Columns ``user``, ``item``, ``rating`` (one row per distinct pair) and optionally
        ``confidence``, and ``user_count`` with ``item_count`` (training frequencies, for
        popularity-scaled unobserved weights: :func:`walsspark.popularity.with_counts`).
    holdout : DataFrame, optional
        Held-out pairs (same columns) to score during training, each with a user and an
        item that ``ratings`` has (:func:`warm_pairs`). The user blocks route the factors
        they need to the item blocks, which score them after every item half-sweep.

    Returns
    -------
    (SideLayout, SideLayout)
        Users, items; their rating blocks computed once and cached.
    """
    user_pkeys = partition_keys(num_user_blocks)
    item_pkeys = partition_keys(num_item_blocks)
    user_blocks = build_side(
        ratings,
        "user",
        num_user_blocks,
        user_pkeys,
        num_item_blocks,
        item_pkeys,
        seed,
        holdout,
        "send",
    )
    item_blocks = build_side(
        ratings,
        "item",
        num_item_blocks,
        item_pkeys,
        num_user_blocks,
        user_pkeys,
        seed,
        holdout,
        "score",
    )
    # The two sides are independent jobs: running them at once overlaps one job's
    # scheduling and Python start-up with the other's work.
    # Cached, not checkpointed: a cached plan keeps its hash partitioning by pkey, so the
    # half-sweeps' cogroups shuffle only the routed factors. (A checkpoint forgets the
    # partitioning and every half-sweep re-shuffled all rating blocks.)
    user_blocks, item_blocks = user_blocks.cache(), item_blocks.cache()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda blocks: blocks.select("block").collect(), (user_blocks, item_blocks)))
    sides = [
        SideLayout("user", num_user_blocks, user_blocks, user_pkeys, _id_type(ratings, "user")),
        SideLayout("item", num_item_blocks, item_blocks, item_pkeys, _id_type(ratings, "item")),
    ]
    return sides[0], sides[1]


def warm_pairs(holdout: DataFrame, ratings: DataFrame) -> DataFrame:
    """The held-out pairs whose user and item both appear in ``ratings`` (the scorable)."""
    return holdout.join(ratings.select("user").distinct(), "user", "left_semi").join(
        ratings.select("item").distinct(), "item", "left_semi"
    )


def _id_type(ratings: DataFrame, column: str) -> str:
    return ratings.schema[column].dataType.simpleString()
