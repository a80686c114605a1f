"""`walsspark recommend` end to end on a tiny model, and its handling of bad input.

One model is trained once per module (string user ids, integer item ids, rank 2, 2 sweeps,
no holdout, so the seen pairs are exactly the training CSV). Every bad-input case must end
with one ``walsspark: error:`` line, exit status 2, and no output or staging directory.
"""

from __future__ import annotations

import glob
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from cli_assertions import assert_one_error_line
from model_files import METADATA, read_metadata, write_metadata

from walsspark.cli import main

HEADER = "user_id,item_id,rating\n"
ROWS = [
    ("u1", 10, 4.0),
    ("u1", 11, 3.0),
    ("u1", 12, 5.0),
    ("u2", 11, 1.0),
    ("u2", 13, 4.0),
    ("u3", 10, 2.0),
    ("u3", 14, 4.5),
    ("u3", 15, 3.5),
    ("u4", 12, 5.0),
]
USERS = sorted({u for u, _, _ in ROWS})
ITEMS = sorted({i for _, i, _ in ROWS})
SEEN: dict[str, set[int]] = defaultdict(set)
for _user, _item, _ in ROWS:
    SEEN[_user].add(_item)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def csv_text(rows) -> str:
    return HEADER + "".join(f"{u},{i},{r}\n" for u, i, r in rows)


@pytest.fixture(scope="module")
def model(spark, tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("recommend-model")
    data = write(root / "ratings.csv", csv_text(ROWS))
    out = str(root / "model")
    args = ["train", "--input", data, "--output", out, "--rank", "2", "--sweeps", "2"]
    assert main([*args, "--holdout-fraction", "0", "--seed", "3"]) == 0
    return out


def recommend(model: str, out: Path, *extra: str) -> int:
    return main(["recommend", "--model", model, "--output", str(out), *extra])


def read_recs(path: Path) -> dict:
    """{query id: [(candidate id, score), ...]} from a parquet output directory."""
    table = pq.read_table(str(path)).to_pylist()
    result = {}
    for row in table:
        assert row["id"] not in result, f"two rows for {row['id']!r}"
        result[row["id"]] = [(r["id"], r["score"]) for r in row["recommendations"]]
    return result


def assert_ordered(recs: list[tuple]) -> None:
    keys = [(-score, cid) for cid, score in recs]
    assert keys == sorted(keys), recs


# ---------------------------------------------------------------------------- success


def test_default_per_user_excludes_seen(model, tmp_path, capsys):
    out = tmp_path / "recs"
    assert recommend(model, out, "--k", "2") == 0
    captured = capsys.readouterr()
    assert "error" not in captured.err and "warning" not in captured.err
    recs = read_recs(out)
    assert sorted(recs) == USERS
    for user, items in recs.items():
        ids = [i for i, _ in items]
        unseen = set(ITEMS) - SEEN[user]
        assert len(ids) == min(2, len(unseen)), (user, items)
        assert not set(ids) & SEEN[user], (user, items)
        assert set(ids) <= unseen and len(set(ids)) == len(ids)
        assert_ordered(items)
    assert not glob.glob(str(tmp_path / "*.tmp-*"))


def test_for_items_gives_users(model, tmp_path):
    out = tmp_path / "recs"
    assert recommend(model, out, "--k", "2", "--for", "items") == 0
    recs = read_recs(out)
    assert sorted(recs) == ITEMS
    for item, users in recs.items():
        ids = [u for u, _ in users]
        assert all(isinstance(u, str) for u in ids)
        assert 0 < len(ids) <= 2
        assert not [u for u in ids if item in SEEN[u]], (item, users)
        assert_ordered(users)


def test_include_seen_and_k_above_candidates(model, tmp_path):
    out = tmp_path / "all"
    assert recommend(model, out, "--k", "50", "--include-seen") == 0
    recs = read_recs(out)
    assert sorted(recs) == USERS
    for items in recs.values():
        # every item, seen ones included, and no padding
        assert sorted(i for i, _ in items) == ITEMS
        assert_ordered(items)

    out = tmp_path / "unseen"
    assert recommend(model, out, "--k", "50") == 0
    recs = read_recs(out)
    for user, items in recs.items():
        assert sorted(i for i, _ in items) == sorted(set(ITEMS) - SEEN[user])
        assert_ordered(items)


def test_csv_format(model, tmp_path):
    out = tmp_path / "recs"
    assert recommend(model, out, "--k", "3", "--format", "csv") == 0
    lines = [
        line
        for part in sorted(out.glob("part-*"))
        for line in part.read_text().splitlines()
        if line
    ]
    parsed = {}
    for line in lines:
        user, *items = line.split(",")
        parsed[user] = [int(i) for i in items]
    assert sorted(parsed) == USERS and len(lines) == len(USERS)
    # the same lists as the parquet output
    reference = tmp_path / "reference"
    assert recommend(model, reference, "--k", "3") == 0
    expected = {u: [i for i, _ in items] for u, items in read_recs(reference).items()}
    assert parsed == expected


def test_ids_subset_reports_unknown(model, tmp_path, capsys):
    ids = write(tmp_path / "ids.txt", "u2\n\n  nobody  \n")
    out = tmp_path / "recs"
    assert recommend(model, out, "--k", "2", "--ids", ids) == 0
    captured = capsys.readouterr()
    assert list(read_recs(out)) == ["u2"]
    warnings = [line for line in captured.err.splitlines() if "nobody" in line]
    assert len(warnings) == 1 and "1 requested id" in warnings[0], captured.err

    # integer ids for --for items
    ids = write(tmp_path / "item_ids.txt", "13\n99\n")
    out = tmp_path / "item_recs"
    assert recommend(model, out, "--k", "2", "--for", "items", "--ids", ids) == 0
    captured = capsys.readouterr()
    assert list(read_recs(out)) == [13]
    assert "99" in captured.err

    # Text that cannot be an integer id is one more unknown id, not a failed run.
    ids = write(tmp_path / "mixed_ids.txt", "13\nabc\n99\n")
    out = tmp_path / "mixed_recs"
    assert recommend(model, out, "--k", "2", "--for", "items", "--ids", ids) == 0
    captured = capsys.readouterr()
    assert list(read_recs(out)) == [13]
    warning = [line for line in captured.err.splitlines() if "requested ids" in line]
    assert len(warning) == 1 and "2 requested ids" in warning[0] and "'abc'" in warning[0]


def test_ids_all_unknown_writes_no_rows_and_reports(model, tmp_path, capsys):
    ids = write(tmp_path / "ids.txt", "nobody\nnoone\n")
    out = tmp_path / "recs"
    assert recommend(model, out, "--k", "2", "--ids", ids) == 0
    err = capsys.readouterr().err
    assert read_recs(out) == {}
    assert "2 requested ids" in err and "'nobody'" in err and "'noone'" in err, err


def test_ratings_file_changes_exclusion(model, tmp_path):
    # u1 has "seen" 13 and 14 here instead of 10, 11 and 12; u2 saw nothing here.
    ratings = write(tmp_path / "other.csv", csv_text([("u1", 13, 1.0), ("u1", 14, 2.0)]))
    out = tmp_path / "recs"
    assert recommend(model, out, "--k", "50", "--ratings", ratings) == 0
    recs = read_recs(out)
    assert sorted(i for i, _ in recs["u1"]) == [10, 11, 12, 15]
    assert sorted(i for i, _ in recs["u2"]) == ITEMS

    # renamed columns via --user-col / --item-col
    renamed = write(tmp_path / "renamed.csv", "who,what,rating\nu1,15,1\n")
    out = tmp_path / "renamed"
    args = ["--k", "50", "--ratings", renamed, "--user-col", "who", "--item-col", "what"]
    assert recommend(model, out, *args) == 0
    assert sorted(i for i, _ in read_recs(out)["u1"]) == [10, 11, 12, 13, 14]


def test_overwrite_replaces_previous_output(model, tmp_path, capsys):
    out = tmp_path / "recs"
    assert recommend(model, out, "--k", "2", "--format", "csv") == 0
    assert recommend(model, out, "--k", "1") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert recommend(model, out, "--k", "1", "--overwrite") == 0
    recs = read_recs(out)
    assert sorted(recs) == USERS and all(len(items) == 1 for items in recs.values())
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


# ---------------------------------------------------------------------------- bad input


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def _not_a_model(tmp: Path, model: str) -> list[str]:
    write(tmp / "plain" / "notes.txt", "hello\n")
    return ["--model", str(tmp / "plain"), "--k", "2"]


def _model_without_factors(tmp: Path, model: str) -> list[str]:
    broken = tmp / "broken"
    broken.mkdir()
    shutil.copytree(Path(model) / METADATA, broken / METADATA)
    return ["--model", str(broken), "--k", "2"]


def _training_input_gone(tmp: Path, model: str) -> list[str]:
    # A model without saved training blocks (as written before they existed) must
    # re-read its training input for the pairs to exclude.
    moved = tmp / "moved"
    shutil.copytree(model, moved)
    meta = read_metadata(moved)
    del meta["factor_blocks"]
    for name in ("user_blocks", "item_blocks"):
        shutil.rmtree(moved / name)
    meta["data"]["input"] = str(tmp / "gone.csv")
    write_metadata(moved, meta)
    return ["--model", str(moved), "--k", "2"]


def _ratings(text: str, *extra: str):
    def setup(tmp: Path, model: str) -> list[str]:
        path = write(tmp / "seen.csv", text)
        return ["--model", model, "--k", "2", "--ratings", path, *extra]

    return setup


def _ids(text: str | None, *extra: str):
    def setup(tmp: Path, model: str) -> list[str]:
        path = tmp / "ids.txt"
        if text is not None:
            write(path, text)
        return ["--model", model, "--k", "2", "--ids", str(path), *extra]

    return setup


def _existing_output(kind: str):
    def setup(tmp: Path, model: str) -> list[str]:
        out = tmp / "recs"
        if kind == "file":
            write(out, "a file\n")
        elif kind == "dir":
            write(out / "keep.txt", "precious\n")
        else:
            out.mkdir()
        return ["--model", model, "--k", "2"]

    return setup


def _args(*args: str):
    return lambda tmp, model: ["--model", model, *args]


BAD = {
    "missing model": (
        lambda tmp, model: ["--model", str(tmp / "nowhere"), "--k", "2"],
        ("model directory not found", "nowhere"),
    ),
    "not a model": (_not_a_model, ("not a walsspark model", "plain")),
    "model without factors": (_model_without_factors, ("incomplete walsspark model",)),
    "k zero": (_args("--k", "0"), ("k must be >= 1", "0")),
    "k negative": (_args("--k", "-3"), ("k must be >= 1", "-3")),
    "k not a number": (_args("--k", "many"), ("--k", "'many'")),
    "unknown side": (_args("--for", "both"), ("--for", "'both'")),
    # The model's user ids are text, which is how "1" is read unless said otherwise.
    "ratings user id type": (
        _ratings(HEADER + "1,10,1.0\n", "--ratings-id-type", "integer"),
        ("user ids", "seen.csv", "bigint", "string"),
    ),
    "ratings item id type": (
        _ratings(HEADER + "u1,i10,1.0\n"),
        ("item ids", "seen.csv", "string", "bigint"),
    ),
    "ratings missing": (
        lambda tmp, model: ["--model", model, "--ratings", str(tmp / "none.csv")],
        ("not found", "none.csv"),
    ),
    "ratings missing column": (
        _ratings("user,item_id,rating\nu1,10,1.0\n"),
        ("missing column user_id",),
    ),
    "training input gone": (_training_input_gone, ("gone.csv", "--ratings")),
    "output is a dir": (_existing_output("dir"), ("exists", "--overwrite")),
    "output is an empty dir": (_existing_output("empty"), ("exists", "--overwrite")),
    "output is a file": (_existing_output("file"), ("existing file", "recs")),
    "ids missing": (_ids(None), ("ids file not found", "ids.txt")),
    "ids empty": (_ids("\n  \n"), ("no ids", "ids.txt")),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_one_line_exit_2_nothing_written(model, tmp_path, capsys, name):
    setup, expected = BAD[name]
    args = ["recommend", *setup(tmp_path, model), "--output", str(tmp_path / "recs")]
    model_parent = Path(model).parent
    before, model_before = snapshot(tmp_path), snapshot(model_parent)

    status = main(args)

    captured = capsys.readouterr()
    assert_one_error_line(status, captured, expected)
    assert captured.out == ""
    assert snapshot(tmp_path) == before
    assert snapshot(model_parent) == model_before


def test_default_output_not_written_on_bad_input(model, tmp_path, capsys):
    """Without --output the default path (next to the model) stays untouched too."""
    before = snapshot(Path(model).parent)
    assert main(["recommend", "--model", model, "--k", "0"]) == 2
    assert capsys.readouterr().err.startswith("walsspark: error: ")
    assert main(["recommend", "--model", model, "--ids", str(tmp_path / "no.txt")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert snapshot(Path(model).parent) == before


def test_output_inside_model_is_refused(model, capsys):
    before = snapshot(Path(model).parent)
    for out in (model, str(Path(model) / "recs")):
        assert main(["recommend", "--model", model, "--output", out, "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("walsspark: error: ") and err.count("\n") == 1, err
    assert snapshot(Path(model).parent) == before


def test_block_pair_path_from_the_command_line_gives_the_same_answer(model, tmp_path):
    shipped, pairs = tmp_path / "shipped", tmp_path / "pairs"
    assert recommend(model, shipped, "--k", "3", "--include-seen") == 0
    # A candidate side "too large to ship" (> 1e-6 MB) forces block pairs and merging.
    assert recommend(model, pairs, "--k", "3", "--include-seen", "--max-candidate-mb", "1e-6") == 0
    # Same ids in the same order; scores agree to float32 rounding (the GEMMs differ).
    got, expected = read_recs(pairs), read_recs(shipped)
    assert {u: [i for i, _ in recs] for u, recs in got.items()} == {
        u: [i for i, _ in recs] for u, recs in expected.items()
    }
    for user, recs in got.items():
        np.testing.assert_allclose(
            [score for _, score in recs], [score for _, score in expected[user]], rtol=1e-5
        )


@pytest.mark.parametrize("side", ["users", "items"])
def test_saved_blocks_exclude_exactly_the_training_pairs(model, tmp_path, side, capsys):
    """The default (the model's saved blocks) gives what the training file as --ratings
    gives (the general path: query blocks packed by a shuffle with the pairs)."""
    from_blocks, from_ratings = tmp_path / "blocks", tmp_path / "ratings"
    assert recommend(model, from_blocks, "--k", "3", "--for", side) == 0
    assert "saved with the model" in capsys.readouterr().out
    training = str(Path(model).parent / "ratings.csv")
    assert recommend(model, from_ratings, "--k", "3", "--for", side, "--ratings", training) == 0
    assert "saved with the model" not in capsys.readouterr().out
    got, expected = read_recs(from_blocks), read_recs(from_ratings)
    assert {q: [c for c, _ in r] for q, r in got.items()} == {
        q: [c for c, _ in r] for q, r in expected.items()
    }


def test_ids_use_the_saved_training_pairs_not_the_input(model, tmp_path, capsys):
    # The model's training input is gone: --ids still excludes exactly the pairs trained
    # on, read from the saved blocks (the same lists as the full, block-scored run).
    moved = tmp_path / "moved"
    shutil.copytree(model, moved)
    meta = read_metadata(moved)
    meta["data"]["input"] = str(tmp_path / "gone.csv")
    write_metadata(moved, meta)
    everyone = tmp_path / "everyone"
    assert recommend(str(moved), everyone, "--k", "3") == 0
    ids = write(tmp_path / "ids.txt", "u1\nu3\n")
    subset = tmp_path / "subset"
    assert recommend(str(moved), subset, "--k", "3", "--ids", ids) == 0
    assert "saved with the model" in capsys.readouterr().out
    expected = read_recs(everyone)
    assert read_recs(subset) == {user: expected[user] for user in ("u1", "u3")}
