"""Block layout details that the oracle tests do not show directly."""

from __future__ import annotations

from pyspark.sql import functions as F

from walsspark.blocks import _spark_hash_int, partition_keys


def test_python_murmur3_equals_spark_hash(spark):
    rows = (
        spark.range(-300, 3000, 7)
        .select(F.col("id").cast("int").alias("v"), F.hash(F.col("id").cast("int")).alias("h"))
        .collect()
    )
    assert [_spark_hash_int(row["v"]) for row in rows] == [row["h"] for row in rows]


def test_partition_keys_give_each_block_its_own_partition(spark):
    for blocks in (1, 2, 3, 7, 16):
        keys = partition_keys(blocks)
        assert len(set(keys)) == blocks
        parts = (
            spark.createDataFrame([(k,) for k in keys], "k int")
            .select(F.pmod(F.hash("k"), F.lit(blocks)).alias("p"))
            .collect()
        )
        assert [row["p"] for row in parts] == list(range(blocks))
