"""Batch top-K on Spark against a brute-force numpy top-K over the same factors."""

from __future__ import annotations

import numpy as np
import pytest

from walsspark.recommend import recommend

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
    expected = brute_force(
        list(zip(problem["query_ids"], problem["query"], strict=True)),
        problem["cand"],
        problem["cand_ids"],
        k,
        problem["seen"],
    )
    got = {row["id"]: [r["id"] for r in row["recommendations"]] for row in result}
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
