"""CSV and TSV read as written (walsspark.delimited): id types, header lines, malformed rows,
and odd ids kept unchanged from the input to every output."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from model_files import read_metadata

from walsspark.cli import main
from walsspark.errors import InputError
from walsspark.ratings_read import RAW_SOURCE_ATTR, read_ratings

MAX, MIN = 2**63 - 1, -(2**63)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def types(df) -> dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in df.schema.fields}


def rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


# ---------------------------------------------------------------- id types


def test_007_and_7_are_two_users_unless_read_as_integers(spark, tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,rating\n007,10,4.0\n7,10,2.0\n")
    df = read_ratings(spark, path)
    assert types(df)["user"] == "string" and types(df)["item"] == "bigint"
    assert rows(df) == [("007", 10, 4.0), ("7", 10, 2.0)]

    df = read_ratings(spark, path, id_type="integer")
    assert types(df)["user"] == "bigint"
    assert rows(df) == [(7, 10, 2.0), (7, 10, 4.0)]


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["0", "-5", str(MAX), str(MIN), "42"], "bigint"),
        (["1", "+7"], "string"),
        (["1", " 7"], "string"),
        (["1", "-0"], "string"),
        (["1", "1.0"], "string"),
        (["1", str(MAX + 1)], "string"),
        (["1", "1e3"], "string"),
    ],
)
def test_auto_keeps_integers_only_when_every_id_prints_back_as_written(
    spark, tmp_path, ids, expected
):
    text = "user_id,item_id,rating\n" + "".join(f"{u},{i},1\n" for i, u in enumerate(ids))
    df = read_ratings(spark, write(tmp_path / "r.csv", text))
    assert types(df)["user"] == expected
    assert sorted(str(r["user"]) for r in df.collect()) == sorted(ids)


def test_string_id_type_keeps_integers_as_text(spark, tmp_path):
    path = write(tmp_path / "r.tsv", "1\t10\t4\n2\t11\t5\n")
    df = read_ratings(spark, path, id_type="string")
    assert types(df) == {"user": "string", "item": "string", "rating": "double"}
    assert rows(df) == [("1", "10", 4.0), ("2", "11", 5.0)]
    # One type per column, as a model needs (user ids text, item ids integers).
    df = read_ratings(spark, path, id_type=("string", "auto"))
    assert types(df)["user"] == "string" and types(df)["item"] == "bigint"


def test_integer_id_type_reports_ids_that_are_not_integers(spark, tmp_path):
    text = "user_id,item_id,rating\n1,10,4\nu2,10,4\nu3,11,1\n"
    with pytest.raises(InputError) as excinfo:
        read_ratings(spark, write(tmp_path / "r.csv", text), id_type="integer")
    assert str(excinfo.value) == (
        "2 rows have an id in column 'user_id' that is not a 64-bit integer (e.g. 'u2'); "
        "--id-type auto or string keeps ids as text"
    )


def test_numeric_ratings_and_weights_are_doubles_read_once(spark, tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,rating,w\n1,10,4,0.5\n2,10,3.5,2\n")
    df = read_ratings(spark, path, extra_cols=("w",))
    assert types(df) == {"user": "bigint", "item": "bigint", "rating": "double", "_w_w": "double"}
    assert rows(df) == [(1, 10, 4.0, 0.5), (2, 10, 3.5, 2.0)]
    # No raw rating text kept: training caches the input on its first pass.
    assert RAW_SOURCE_ATTR not in vars(df)
    weights = write(tmp_path / "t.csv", "user_id,item_id,rating,w\n1,10,4,heavy\n")
    with pytest.raises(InputError, match=r"weight column 'w' has type string"):
        read_ratings(spark, weights, extra_cols=("w",))


# ---------------------------------------------------------------- header lines


def test_csv_without_header_line_by_position(spark, tmp_path):
    path = write(tmp_path / "r.csv", "u1,10,4.0,100\nu2,11,3,101.7\n")
    df = read_ratings(spark, path, header=False)
    assert types(df) == {
        "user": "string",
        "item": "bigint",
        "rating": "double",
        "timestamp": "bigint",
    }
    assert rows(df) == [("u1", 10, 4.0, 100), ("u2", 11, 3.0, 101)]


def test_headerless_csv_read_with_a_header_is_refused(spark, tmp_path):
    path = write(tmp_path / "r.csv", "1,10,4.0\n2,11,3.0\n")
    with pytest.raises(InputError, match=r"seems to have no header line .* --no-header"):
        read_ratings(spark, path)


def test_tsv_with_header_line_by_name(spark, tmp_path):
    # As published play-count sets are: a header line, then user, artist, plays.
    text = "user\tartist\tplays\nalice\tthe-band\t12\nbob\tthe-band\t3\n"
    path = write(tmp_path / "plays.tsv", text)
    df = read_ratings(
        spark, path, user_col="user", item_col="artist", rating_col="plays", header=True
    )
    assert rows(df) == [("alice", "the-band", 12.0), ("bob", "the-band", 3.0)]
    with pytest.raises(InputError, match=r"seems to have a header line \(user, artist, plays\)"):
        read_ratings(spark, path)  # tsv default: no header line
    # Said explicitly, the first line is a row like any other: its rating is no number.
    from walsspark.ratings_check import validate_ratings

    with pytest.raises(InputError, match=r"1 row has a non-numeric rating .*rating='plays'"):
        validate_ratings(read_ratings(spark, path, header=False))


# ---------------------------------------------------------------- malformed rows


@pytest.mark.parametrize(
    ("name", "text", "header", "expected"),
    [
        (
            "r.csv",
            "user_id,item_id,rating\n1,10,4\n2,10,3,77\n3,11,2,8,9\n",
            None,
            "2 rows have another number of fields than the header line's 3 (e.g. '2,10,3,77')",
        ),
        (
            "r.tsv",
            "1\t10\t4\n2\t10\n",
            None,
            "1 row has another number of fields than the first line's 3 (e.g. '2\\t10')",
        ),
    ],
)
def test_malformed_rows_are_reported(spark, tmp_path, name, text, header, expected):
    with pytest.raises(InputError) as excinfo:
        read_ratings(spark, write(tmp_path / name, text), header=header)
    assert str(excinfo.value) == expected


# ---------------------------------------------------------------- from input to outputs

LONG_ID = "x" * 1000
USERS = ["ユーザー", "ü", LONG_ID, "007", "7", "-5", "a,b"]
ITEMS = [MAX, MIN, -1, 0, 42, 9007199254740993]  # 2^53 + 1: not a double


def odd_ids_csv() -> str:
    lines = ["user_id,item_id,rating"]
    for u, user in enumerate(USERS):
        for i, item in enumerate(ITEMS):
            if (u + i) % 3:
                quoted = f'"{user}"' if "," in user else user
                lines.append(f"{quoted},{item},{(u * i) % 5 + 1}")
    return "\n".join(lines) + "\n"


def ids_in(path: Path) -> tuple[set, set]:
    """The query ids and the recommended ids of a recommendation table."""
    table = pq.read_table(path).to_pylist()
    return {r["id"] for r in table}, {x["id"] for r in table for x in r["recommendations"]}


def test_odd_ids_round_trip_to_every_output(spark, tmp_path, capsys):
    data = write(tmp_path / "odd.csv", odd_ids_csv())
    model = tmp_path / "model"
    args = ["train", "--input", data, "--output", str(model), "--rank", "2", "--sweeps", "2"]
    assert main([*args, "--holdout-fraction", "0"]) == 0, capsys.readouterr().err
    metadata = read_metadata(model)["data"]
    assert (metadata["user_id_type"], metadata["item_id_type"]) == ("string", "bigint")
    assert (metadata["num_users"], metadata["num_items"]) == (len(USERS), len(ITEMS))

    for side, (queries, candidates) in {"users": (USERS, ITEMS), "items": (ITEMS, USERS)}.items():
        out = tmp_path / f"recs-{side}"
        recommend = ["recommend", "--model", str(model), "--for", side, "--k", "3"]
        assert main([*recommend, "--include-seen", "--output", str(out)]) == 0
        got_queries, got_candidates = ids_in(out)
        assert got_queries == set(queries)
        assert got_candidates <= set(candidates) and len(got_candidates) > 1

    # New users with the same odd ids (and items as written in the file) fold in unchanged.
    new = write(tmp_path / "new.csv", odd_ids_csv().replace(",1\n", ",2\n"))
    out = tmp_path / "projected"
    project = ["project", "--model", str(model), "--input", new, "--k", "2"]
    assert main([*project, "--output", str(out)]) == 0, capsys.readouterr().err
    factors = {r["id"] for r in pq.read_table(out / "factors").to_pylist()}
    assert factors == set(USERS)
    got_queries, got_candidates = ids_in(out / "recommendations")
    assert got_queries <= set(USERS) and got_candidates <= set(ITEMS)


def test_id_type_option_and_config_key(spark, tmp_path, capsys):
    rows_text = "007,10,4\n7,10,2\n8,11,5\n8,10,1\n007,11,3\n"
    data = write(tmp_path / "r.csv", "user_id,item_id,rating\n" + rows_text)
    base = ["train", "--input", data, "--rank", "2", "--sweeps", "1", "--holdout-fraction", "0"]
    assert main([*base, "--output", str(tmp_path / "as-written")]) == 0
    written = read_metadata(tmp_path / "as-written")["data"]
    assert (written["num_users"], written["user_id_type"]) == (3, "string")

    config = write(tmp_path / "c.toml", "[train]\nid_type = 'integer'\n")
    assert main([*base, "--output", str(tmp_path / "integers"), "--config", config]) == 0
    integers = read_metadata(tmp_path / "integers")["data"]
    assert (integers["num_users"], integers["user_id_type"]) == (2, "bigint")
    assert integers["id_type"] == "integer"

    # A header-less copy: refused as CSV with a header line, read by position without.
    bare = write(tmp_path / "bare.csv", rows_text)
    bare_args = [*base, "--input", bare, "--output", str(tmp_path / "bare")]
    assert main(bare_args) == 2
    assert "seems to have no header line" in capsys.readouterr().err
    assert main([*bare_args, "--no-header"]) == 0
    bare_data = read_metadata(tmp_path / "bare")["data"]
    assert (bare_data["num_users"], bare_data["header"]) == (3, False)


def test_test_set_ids_are_read_as_the_models(spark, tmp_path, capsys):
    """A test file of the model's text ids "7" and "8" alone is read as text, not numbers."""
    train = "user_id,item_id,rating\n007,10,4\n7,10,2\n8,11,5\n8,10,1\n007,11,3\n7,12,4\n"
    data = write(tmp_path / "r.csv", train)
    model = str(tmp_path / "model")
    args = ["train", "--input", data, "--output", model, "--rank", "2", "--sweeps", "1"]
    assert main([*args, "--holdout-fraction", "0"]) == 0
    test = write(tmp_path / "test.csv", "user_id,item_id,rating\n7,11,4\n8,12,3\n")
    out = str(tmp_path / "evaluation")
    assert main(["evaluate", "--model", model, "--test", test, "--output", out]) == 0, (
        capsys.readouterr().err
    )
    # Said otherwise, the ids are integers, which the model's are not.
    again = ["evaluate", "--model", model, "--test", test, "--id-type", "integer"]
    assert main([*again, "--output", out + "2"]) == 2
    assert "user ids in" in capsys.readouterr().err
