"""Reading, validating, de-duplicating and holding out ratings (ratings_read, input_format,
ratings_check, duplicates, splits)."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import DoubleType, LongType, StructField, StructType

from walsspark.duplicates import resolve_duplicates
from walsspark.errors import InputError, guarded_read
from walsspark.input_format import detect_format
from walsspark.paths import PathResolver
from walsspark.ratings_check import validate_ratings
from walsspark.ratings_read import RATING_COLUMNS, read_ratings
from walsspark.splits import split_holdout
from walsspark.storage import Storage

# Synthetic rows: (user, item, rating, timestamp).
ROWS = [(1, 10, 4.0, 100), (1, 11, 3.5, 101), (2, 10, 5.0, 102)]

SCHEMA_TS = StructType(
    [
        StructField("user", LongType()),
        StructField("item", LongType()),
        StructField("rating", DoubleType()),
        StructField("timestamp", LongType()),
    ]
)
SCHEMA_NO_TS = StructType(SCHEMA_TS.fields[:3])


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def types(df) -> dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in df.schema.fields}


def write_parquet(path: Path, columns: dict[str, list], types_: dict | None = None) -> str:
    arrays = {k: pa.array(v, type=(types_ or {}).get(k)) for k, v in columns.items()}
    pq.write_table(pa.table(arrays), str(path))
    return str(path)


def test_rating_columns():
    assert RATING_COLUMNS == ("user", "item", "rating", "timestamp")


# ---------------------------------------------------------------- formats


def test_parquet_file_and_directory(spark, tmp_path):
    data = {
        "uid": [1, 1, 2],
        "iid": [10, 11, 10],
        "stars": [4, 3, 5],
        "ts": [100, 101, 102],
    }
    int32 = {"uid": pa.int32(), "iid": pa.int16(), "stars": pa.int32()}
    directory = tmp_path / "ratings_dir"
    directory.mkdir()
    write_parquet(directory / "part-0.parquet", data, int32)
    df = read_ratings(spark, str(directory), "parquet", "uid", "iid", "stars", "ts")
    assert df.columns == list(RATING_COLUMNS)
    assert types(df) == {
        "user": "bigint",
        "item": "bigint",
        "rating": "double",
        "timestamp": "bigint",
    }
    assert rows(df) == [(1, 10, 4.0, 100), (1, 11, 3.0, 101), (2, 10, 5.0, 102)]
    # A single file, auto-detected, without a timestamp column requested.
    df = read_ratings(
        spark, str(directory / "part-0.parquet"), user_col="uid", item_col="iid", rating_col="stars"
    )
    assert df.columns == ["user", "item", "rating"]


def test_csv_with_header_string_ids_stay_strings(spark, tmp_path):
    path = write(
        tmp_path / "r.csv",
        "user_id,item_id,rating,when\nu1,i10,4.0,100\nu1,i11,3.5,101\nu2,i10,5,102\n",
    )
    df = read_ratings(spark, path, "csv", timestamp_col="when")
    assert types(df) == {
        "user": "string",
        "item": "string",
        "rating": "double",
        "timestamp": "bigint",
    }
    assert rows(df) == [("u1", "i10", 4.0, 100), ("u1", "i11", 3.5, 101), ("u2", "i10", 5.0, 102)]


def test_csv_integer_ids_become_long(spark, tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,rating\n1,10,4\n2,3000000000,5\n")
    df = read_ratings(spark, path)  # auto: *.csv
    assert types(df) == {"user": "bigint", "item": "bigint", "rating": "double"}
    assert rows(df) == [(1, 10, 4.0), (2, 3000000000, 5.0)]


def test_headerless_tsv(spark, tmp_path):
    path = write(tmp_path / "r.tsv", "1\t10\t4.0\t100\n1\t11\t3.5\t101\n2\t10\t5.0\t102\n")
    df = read_ratings(spark, path, "tsv", user_col="ignored")
    assert types(df) == {
        "user": "bigint",
        "item": "bigint",
        "rating": "double",
        "timestamp": "bigint",
    }
    assert rows(df) == ROWS
    three = write(tmp_path / "three.tab", "a\tb\t1\n")
    df = read_ratings(spark, three)  # auto: *.tab, no timestamp column
    assert rows(df) == [("a", "b", 1.0)]


def test_movielens_u_data(spark, tmp_path):
    path = write(tmp_path / "ml-100k" / "u.data", "1\t10\t4\t100\n1\t11\t3\t101\n2\t10\t5\t102\n")
    df = read_ratings(spark, path, "movielens")
    assert types(df) == {
        "user": "bigint",
        "item": "bigint",
        "rating": "double",
        "timestamp": "bigint",
    }
    assert rows(df) == [(1, 10, 4.0, 100), (1, 11, 3.0, 101), (2, 10, 5.0, 102)]


def test_movielens_ratings_dat_double_colon(spark, tmp_path):
    path = write(
        tmp_path / "ml-1m" / "ratings.dat", "1::10::4::100\n1::11::3.5::101\n\n2::10::5::102\n"
    )
    df = read_ratings(spark, str(tmp_path / "ml-1m"), "movielens")  # directory
    assert types(df) == {
        "user": "bigint",
        "item": "bigint",
        "rating": "double",
        "timestamp": "bigint",
    }
    assert rows(df) == ROWS
    assert rows(read_ratings(spark, path)) == ROWS  # auto: file named ratings.dat


def test_movielens_ratings_csv(spark, tmp_path):
    text = "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,11,3.5,101\n2,10,5.0,102\n"
    path = write(tmp_path / "ml-latest" / "ratings.csv", text)
    df = read_ratings(spark, path, "movielens")
    assert types(df) == {
        "user": "bigint",
        "item": "bigint",
        "rating": "double",
        "timestamp": "bigint",
    }
    assert rows(df) == ROWS
    # auto on any *.csv with a MovieLens header uses the MovieLens mapping
    other = write(tmp_path / "export.csv", text)
    assert rows(read_ratings(spark, other)) == ROWS


@pytest.mark.parametrize(
    ("layout", "target", "expected"),
    [
        ({"d/u.data": "1\t2\t3\t4\n"}, "d", ("movielens", "d/u.data")),
        ({"d/ratings.dat": "1::2::3::4\n"}, "d", ("movielens", "d/ratings.dat")),
        (
            {"d/ratings.csv": "userId,movieId,rating,timestamp\n"},
            "d",
            ("movielens", "d/ratings.csv"),
        ),
        ({"d/u.data": "x", "d/u.item": "x"}, "d/u.data", ("movielens", "d/u.data")),
        ({"d/part-0.parquet": "x", "d/_SUCCESS": ""}, "d", ("parquet", "d")),
        ({"x.parquet": "x"}, "x.parquet", ("parquet", "x.parquet")),
        ({"x.csv": "user_id,item_id,rating\n"}, "x.csv", ("csv", "x.csv")),
        ({"x.csv": "userId,movieId,rating,timestamp\n"}, "x.csv", ("movielens", "x.csv")),
        ({"x.tsv": "1\t2\t3\n"}, "x.tsv", ("tsv", "x.tsv")),
        ({"x.tab": "1\t2\t3\n"}, "x.tab", ("tsv", "x.tab")),
    ],
)
def test_auto_detection(spark, tmp_path, layout, target, expected):
    for name, text in layout.items():
        write(tmp_path / name, text)
    fmt, path = detect_format(Storage(PathResolver(), spark), str(tmp_path / target))
    assert (fmt, path) == (expected[0], str(tmp_path / expected[1]))


def test_auto_detection_through_spark_listing(spark, tmp_path):
    # Non-local file systems are listed through Spark's file index, not os.
    write(tmp_path / "d" / "ratings.dat", "1::10::4::100\n")
    write(tmp_path / "d" / "movies.dat", "10::Title::Genre\n")
    spark_only = Storage(PathResolver(driver_is_here=False), spark)
    uri = (tmp_path / "d").as_uri()
    assert detect_format(spark_only, uri) == ("movielens", uri + "/ratings.dat")


@pytest.mark.parametrize("name", ["ratings.txt", "somedir"])
def test_auto_detection_fails(spark, tmp_path, name):
    target = tmp_path / name
    if name == "somedir":
        write(target / "notes.txt", "x")
    else:
        write(target, "1,2,3\n")
    with pytest.raises(InputError, match=r"could not determine the input format .* --format"):
        read_ratings(spark, str(target))


# ---------------------------------------------------------------- read errors


def test_missing_input(spark, tmp_path):
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"^input not found: .*nope\.csv$"):
        read_ratings(spark, missing)
    # Paths on other file systems are not checked up front: Spark's not-found error maps
    # to the same message.
    with pytest.raises(InputError, match=r"^input not found: "):
        guarded_read(missing, "csv", lambda: spark.read.csv(missing).schema)


def test_missing_columns(spark, tmp_path):
    path = write(tmp_path / "r.csv", "user_id,movie,score\n1,2,3\n")
    with pytest.raises(InputError) as excinfo:
        read_ratings(spark, path, "csv")
    message = str(excinfo.value)
    assert "missing columns item_id, rating" in message
    assert "columns present: user_id, movie, score" in message
    assert "\n" not in message


def test_unknown_format(spark, tmp_path):
    path = write(tmp_path / "r.csv", "a\n")
    with pytest.raises(InputError, match=r"unknown input format 'xlsx'"):
        read_ratings(spark, path, "xlsx")


def test_corrupt_parquet(spark, tmp_path):
    path = write(tmp_path / "bad.parquet", "this is not parquet at all")
    with pytest.raises(InputError) as excinfo:
        read_ratings(spark, path)
    message = str(excinfo.value)
    assert message.startswith(f"cannot read {path} as parquet: ")
    assert "FAILED_READ_FILE" in message  # the Spark error itself, not Py4J's preamble
    assert "\n" not in message


def test_unsupported_id_type(spark, tmp_path):
    # Parquet keeps its column types; CSV ids such as 1.5 are text (tests/test_ids_as_written.py).
    path = write_parquet(tmp_path / "r.parquet", {"user_id": [1.5], "item_id": [10], "rating": [4]})
    with pytest.raises(InputError, match=r"user id column 'user_id' has type double"):
        read_ratings(spark, path)


# ---------------------------------------------------------------- validation


def test_validate_ok(spark, tmp_path):
    path = write(tmp_path / "r.tsv", "1\t10\t4.0\n2\t10\t5.0\n")
    assert validate_ratings(read_ratings(spark, path)) == 2


def test_validate_empty(spark, tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,rating\n")
    with pytest.raises(InputError, match=r"^input has no ratings$"):
        validate_ratings(read_ratings(spark, path))


def test_validate_null_user_id(spark):
    data = [(None, 17, 4.0), (None, 18, 2.0), (None, 19, 1.0), (1, 2, 3.0)]
    df = spark.createDataFrame(data, SCHEMA_NO_TS)
    with pytest.raises(
        InputError, match=r"^3 rows have a null user id \(e\.g\. item=17, rating=4\.0\)$"
    ):
        validate_ratings(df)


def test_validate_null_item_id(spark, tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,rating\nu5,,3\nu1,i2,4\n")
    with pytest.raises(
        InputError, match=r"^1 row has a null item id \(e\.g\. user='u5', rating=3\.0\)$"
    ):
        validate_ratings(read_ratings(spark, path))


def test_validate_non_numeric_and_null_rating(spark, tmp_path):
    text = "user_id,item_id,rating\n1,2,abc\n1,3,x\n2,2,\n2,3,4\n"
    path = write(tmp_path / "r.csv", text)
    with pytest.raises(InputError) as excinfo:
        validate_ratings(read_ratings(spark, path))
    assert str(excinfo.value) == (
        "2 rows have a non-numeric rating (e.g. user=1, item=2, rating='abc'); "
        "1 row has a null rating (e.g. user=2, item=2)"
    )


def test_validate_null_rating_typed(spark):
    df = spark.createDataFrame([(1, 2, None), (1, 3, 4.0)], SCHEMA_NO_TS)
    with pytest.raises(InputError, match=r"^1 row has a null rating \(e\.g\. user=1, item=2\)$"):
        validate_ratings(df)


def test_validate_nan(spark, tmp_path):
    path = write(tmp_path / "r.tsv", "1\t2\tNaN\n1\t3\t4.0\n")
    with pytest.raises(
        InputError,
        match=r"^1 row has a NaN or infinite rating \(e\.g\. user=1, item=2, rating=nan\)$",
    ):
        validate_ratings(read_ratings(spark, path))


def test_validate_infinity(spark):
    data = [(1, 2, math.inf), (1, 3, -math.inf), (1, 4, 1.0)]
    df = spark.createDataFrame(data, SCHEMA_NO_TS)
    with pytest.raises(
        InputError,
        match=r"^2 rows have a NaN or infinite rating \(e\.g\. user=1, item=2, rating=inf\)$",
    ):
        validate_ratings(df)


def test_validate_order_ids_before_ratings(spark):
    df = spark.createDataFrame([(None, 2, math.nan), (1, 2, None)], SCHEMA_NO_TS)
    with pytest.raises(InputError, match=r"^1 row has a null user id"):
        validate_ratings(df)


# ---------------------------------------------------------------- duplicates

DUPES = [
    (1, 10, 4.0, 100),
    (1, 10, 2.0, 300),
    (1, 10, 5.0, 200),
    (2, 20, 1.0, 50),
    (2, 20, 3.0, 50),  # same timestamp: the larger rating wins under 'last'
    (3, 30, 2.5, 10),
]


@pytest.fixture(scope="module")
def dupes(spark):
    return spark.createDataFrame(DUPES, SCHEMA_TS)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("sum", [(1, 10, 11.0, 300), (2, 20, 4.0, 50), (3, 30, 2.5, 10)]),
        ("mean", [(1, 10, 11.0 / 3, 300), (2, 20, 2.0, 50), (3, 30, 2.5, 10)]),
        ("last", [(1, 10, 2.0, 300), (2, 20, 3.0, 50), (3, 30, 2.5, 10)]),
    ],
)
def test_duplicate_policies(dupes, policy, expected):
    result = resolve_duplicates(dupes, policy)
    assert result.columns == list(RATING_COLUMNS)
    assert types(result) == types(dupes)
    got = rows(result)
    assert [r[:2] + r[3:] for r in got] == [r[:2] + r[3:] for r in expected]
    assert [r[2] for r in got] == pytest.approx([r[2] for r in expected])


def test_duplicate_sum_without_timestamp(spark):
    df = spark.createDataFrame(
        [("a", "x", 1.0), ("a", "x", 2.0)], "user string, item string, rating double"
    )
    result = resolve_duplicates(df, "sum")
    assert result.columns == ["user", "item", "rating"]
    assert rows(result) == [("a", "x", 3.0)]


def test_duplicate_last_needs_timestamp(spark):
    df = spark.createDataFrame([(1, 2, 3.0)], SCHEMA_NO_TS)
    with pytest.raises(InputError, match=r"^duplicate policy 'last' needs a timestamp column$"):
        resolve_duplicates(df, "last")


def test_duplicate_error_policy(spark, dupes):
    with pytest.raises(InputError) as excinfo:
        resolve_duplicates(dupes, "error")
    message = str(excinfo.value)
    assert message.startswith(
        "2 (user, item) pairs occur more than once (e.g. user=1, item=10: 3 ratings)"
    )
    unique = spark.createDataFrame(ROWS, SCHEMA_TS)
    assert resolve_duplicates(unique, "error") is unique


def test_duplicate_unknown_policy(dupes):
    with pytest.raises(InputError, match=r"unknown duplicate policy 'max'"):
        resolve_duplicates(dupes, "max")


# ---------------------------------------------------------------- hold-out split


@pytest.fixture(scope="module")
def many(spark):
    return spark.range(0, 4000).selectExpr(
        "id % 97 AS user", "id AS item", "cast(id % 5 + 1 AS double) AS rating"
    )


def test_split_is_deterministic_and_partition_independent(many):
    train, holdout = split_holdout(many, 0.2, seed=7)
    _, holdout_again = split_holdout(many.repartition(7), 0.2, seed=7)
    _, holdout_other_seed = split_holdout(many, 0.2, seed=8)
    # One job: the three hold-out sets and the train size side by side.
    tagged = (
        holdout.selectExpr("item", "1 AS a")
        .unionByName(holdout_again.selectExpr("item", "2 AS a"))
        .unionByName(holdout_other_seed.selectExpr("item", "3 AS a"))
        .unionByName(train.selectExpr("item", "4 AS a"))
    )
    sets: dict[int, set[int]] = {1: set(), 2: set(), 3: set(), 4: set()}
    for row in tagged.collect():
        sets[row["a"]].add(row["item"])
    assert sets[1] == sets[2]
    assert sets[1] != sets[3]
    assert sets[1].isdisjoint(sets[4])
    assert len(sets[1]) + len(sets[4]) == 4000
    assert 0.16 < len(sets[1]) / 4000 < 0.24
    assert 0.16 < len(sets[3]) / 4000 < 0.24


def test_split_fraction_zero(many):
    train, holdout = split_holdout(many, 0.0, seed=1)
    assert holdout.isEmpty()
    assert train.columns == many.columns


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, math.nan])
def test_split_bad_fraction(many, fraction):
    with pytest.raises(InputError, match=r"^holdout fraction must be in \[0, 1\), got "):
        split_holdout(many, fraction, seed=1)
