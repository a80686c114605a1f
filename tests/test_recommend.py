"""Batch top-K on Spark against a brute-force numpy top-K over the same factors."""

from __future__ import annotations

import numpy as np
import pytest

from walsspark.factors import encode_array, encode_factors
from walsspark.params import WALSParams
from walsspark.recommend import recommend, recommend_from_blocks
from walsspark.train import fit

RANK = 4


def factor_frame(spark, ids, factors, id_type):
    rows = [(i, [float(x) for x in f]) for i, f in zip(ids, factors, strict=True)]
    return spark.createDataFrame(rows, f"id {id_type}, features array<float>")


def brute_force(query, cand, cand_ids, k, seen):
    """Independent reference: full scores, sorted by (-score, id), seen removed."""
    result = {}
    for qid, qf in query:
        scored = [
            (-float(np.dot(qf.astype(np.float32), cf.astype(np.float32))), cid)
            for cid, cf in zip(cand_ids, cand, strict=True)
            if (qid, cid) not in seen
        ]
        result[qid] = [cid for _, cid in sorted(scored)[:k]]
    return result


def brute_force_queries(problem: dict, k: int, seen: set) -> dict:
    """The brute-force top-k of the problem's queries against its candidates."""
    queries = list(zip(problem["query_ids"], problem["query"], strict=True))
    return brute_force(queries, problem["cand"], problem["cand_ids"], k, seen)


def top_ids(rows) -> dict:
    """{query id: [candidate ids]} of collected top-K rows."""
    return {row["id"]: [r["id"] for r in row["recommendations"]] for row in rows}


@pytest.fixture(scope="module")
def problem(spark):
    rng = np.random.default_rng(3)
    query_ids = [100 + 3 * i for i in range(23)]
    cand_ids = [f"c{j:02d}" for j in range(17)]
    # Integer-valued factors make exact score ties common, so the id tie-break matters.
    query = rng.integers(-2, 3, (len(query_ids), RANK)).astype(np.float32)
    cand = rng.integers(-2, 3, (len(cand_ids), RANK)).astype(np.float32)
    seen = {(q, c) for q in query_ids for c in cand_ids if rng.random() < 0.3}
    seen |= {(query_ids[0], c) for c in cand_ids}  # one query has seen everything
    seen_frame = spark.createDataFrame(sorted(seen), "query long, candidate string")
    return dict(
        query_ids=query_ids,
        cand_ids=cand_ids,
        query=query,
        cand=cand,
        seen=seen,
        query_frame=factor_frame(spark, query_ids, query, "long"),
        cand_frame=factor_frame(spark, cand_ids, cand, "string"),
        seen_frame=seen_frame,
    )


@pytest.mark.parametrize("max_candidate_bytes", [1 << 30, 64], ids=["shipped", "block-pairs"])
@pytest.mark.parametrize("k", [5, 40])
def test_top_k_equals_brute_force(spark, problem, k, max_candidate_bytes):
    result = recommend(
        spark,
        problem["query_frame"],
        problem["cand_frame"],
        k,
        RANK,
        seen=problem["seen_frame"],
        max_candidate_bytes=max_candidate_bytes,
    ).collect()
    expected = brute_force_queries(problem, k, problem["seen"])
    got = top_ids(result)
    assert got == expected
    assert got[problem["query_ids"][0]] == []  # everything seen: no padding
    for row in result:
        scores = [r["score"] for r in row["recommendations"]]
        assert scores == sorted(scores, reverse=True)


def test_items_to_users_is_the_same_path_transposed(spark, problem):
    result = recommend(spark, problem["cand_frame"], problem["query_frame"], 3, RANK).collect()
    expected = brute_force(
        list(zip(problem["cand_ids"], problem["cand"], strict=True)),
        problem["query"],
        problem["query_ids"],
        3,
        set(),
    )
    assert {row["id"]: [r["id"] for r in row["recommendations"]] for row in result} == expected


# ------------------------------------------------------------- from the training blocks


def factor_block_frame(spark, ids, factors, seen, other_type, num_blocks, id_type):
    """Factor blocks as training leaves them, built by hand: ids sorted within a block,
    the training pairs as CSR over a needed list in an arbitrary (here reversed) order."""
    rows = []
    for block in range(num_blocks):
        members = sorted(i for n, i in enumerate(ids) if n % num_blocks == block)
        index = {i: n for n, i in enumerate(ids)}
        needed = sorted({c for q, c in seen if q in members}, reverse=True)
        position = {c: n for n, c in enumerate(needed)}
        indptr, cols = [0], []
        for q in members:
            cols += sorted(position[c] for qq, c in seen if qq == q)
            indptr.append(len(cols))
        rows.append(
            (
                block,
                members,
                encode_factors(factors[[index[i] for i in members]]),
                encode_array(np.array(indptr), "<i8"),
                encode_array(np.array(cols), "<i4"),
                needed,
            )
        )
    schema = (
        f"block int, ids array<{id_type}>, factors binary, indptr binary, cols binary, "
        f"needed_ids array<{other_type}>"
    )
    return spark.createDataFrame(rows, schema)


@pytest.mark.parametrize("max_candidate_bytes", [1 << 30, 64], ids=["shipped", "block-pairs"])
@pytest.mark.parametrize("exclude_seen", [True, False], ids=["excluded", "included"])
@pytest.mark.parametrize("k", [5, 40])
def test_top_k_from_factor_blocks_equals_brute_force(
    spark, problem, k, exclude_seen, max_candidate_bytes
):
    swapped = {(c, q) for q, c in problem["seen"]}
    queries = factor_block_frame(
        spark, problem["query_ids"], problem["query"], problem["seen"], "string", 3, "long"
    )
    candidates = factor_block_frame(
        spark, problem["cand_ids"], problem["cand"], swapped, "long", 2, "string"
    )
    result = recommend_from_blocks(
        queries,
        candidates,
        k,
        RANK,
        num_candidates=len(problem["cand_ids"]),
        exclude_seen=exclude_seen,
        max_candidate_bytes=max_candidate_bytes,
    ).collect()
    assert top_ids(result) == brute_force_queries(
        problem, k, problem["seen"] if exclude_seen else set()
    )


def test_trained_blocks_give_what_the_factor_tables_give(spark):
    """End to end: fit, then top-K from the factor blocks equals top-K from the factor
    rows with the training pairs as the exclusion list, both directions."""
    rng = np.random.default_rng(8)
    pairs = {(f"u{rng.integers(40)}", int(rng.integers(25))) for _ in range(300)}
    ratings = spark.createDataFrame(
        [(u, i, float(rng.integers(1, 6))) for u, i in sorted(pairs)],
        "user string, item long, rating float",
    )
    params = WALSParams(rank=RANK, sweeps=2, num_user_blocks=3, num_item_blocks=2).validate()
    trained = fit(spark, ratings, params)
    users, items = trained.user_factors(), trained.item_factors()
    n_users, n_items = len({u for u, _ in pairs}), len({i for _, i in pairs})
    for query, cand, side, other, n_cand in (
        (users, items, "user", "item", n_items),
        (items, users, "item", "user", n_users),
    ):
        seen = ratings.selectExpr(f"{side} as query", f"{other} as candidate")
        expected = recommend(spark, query, cand, 4, RANK, seen=seen).collect()
        got = recommend_from_blocks(
            trained.factor_blocks(side), trained.factor_blocks(other), 4, RANK, n_cand
        ).collect()
        assert top_ids(got) == top_ids(expected)
        assert len(got) == (n_users if side == "user" else n_items)
    trained.release()
