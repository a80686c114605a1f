"""`walsspark train` on bad input: one error line, exit status 2, nothing on disk.

Every error case runs ``main()`` with training patched to fail, so each problem is shown
to be caught before training starts; the whole ``tmp_path`` tree is compared before and
after the run, so no model, partial model or staging directory can be left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_assertions import assert_one_error_line
from model_files import METADATA, read_metadata, write_metadata

import walsspark.train
from walsspark.cli import main
from walsspark.errors import InputError
from walsspark.model import LEGACY_METADATA_FILE, SavedModel
from walsspark.sweep_checkpoints import FORMAT, MARKER, SLOTS

HEADER = "user_id,item_id,rating\n"
GOOD_ROWS = "1,10,4.0\n1,11,3.0\n2,10,5.0\n2,12,1.0\n3,11,2.0\n3,12,4.5\n"
GOOD_CSV = HEADER + GOOD_ROWS


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def csv_input(text: str, name: str = "ratings.csv") -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        return ["--input", write(tmp / name, text)]

    return setup


def parquet_input(columns: dict[str, pa.Array]) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        path = tmp / "ratings.parquet"
        pq.write_table(pa.table(columns), path)
        return ["--input", str(path)]

    return setup


def parquet_files_disagreeing() -> Callable[[Path], list[str]]:
    """A Parquet directory whose files give user_id different types (int, then string)."""

    def setup(tmp: Path) -> list[str]:
        directory = tmp / "ratings"
        directory.mkdir()
        for name, users in (("a", pa.array([1, 2], pa.int64())), ("b", pa.array(["x", "y"]))):
            table = pa.table({"user_id": users, "item_id": [10, 11], "rating": [3.0, 4.0]})
            pq.write_table(table, directory / f"{name}.parquet")
        return ["--input", str(directory)]

    return setup


def good_csv(*extra: str) -> Callable[[Path], list[str]]:
    """Valid ratings plus the given options."""

    def setup(tmp: Path) -> list[str]:
        return ["--input", write(tmp / "ratings.csv", GOOD_CSV), *extra]

    return setup


def with_args(setup: Callable[[Path], list[str]], *extra: str) -> Callable[[Path], list[str]]:
    """``setup`` followed by more options."""
    return lambda tmp: [*setup(tmp), *extra]


def config(content: str | bytes | None) -> Callable[[Path], list[str]]:
    """Valid ratings and a --config file holding ``content`` (None: no such file)."""

    def setup(tmp: Path) -> list[str]:
        conf = tmp / "conf.toml"
        if isinstance(content, str):
            write(conf, content)
        elif isinstance(content, bytes):
            conf.write_bytes(content)
        return good_csv("--config", str(conf))(tmp)

    return setup


def _config_directory(tmp: Path) -> list[str]:
    (tmp / "conf.toml").mkdir()
    return good_csv("--config", str(tmp / "conf.toml"))(tmp)


def ids(users: list, items: list) -> dict[str, pa.Array]:
    return {"user_id": pa.array(users), "item_id": pa.array(items)}


@dataclass
class Case:
    name: str
    setup: Callable[[Path], list[str]]
    expected: tuple[str, ...]
    # The case relies on file permissions (emulated for root, who bypasses them).
    permissions: bool = False


def _missing_input(tmp: Path) -> list[str]:
    return ["--input", str(tmp / "nowhere.csv")]


def _unreadable_input(tmp: Path) -> list[str]:
    path = write(tmp / "ratings.csv", GOOD_CSV)
    os.chmod(path, 0)
    return ["--input", path]


def _unknown_layout(tmp: Path) -> list[str]:
    write(tmp / "data" / "notes.txt", "not ratings\n")
    return ["--input", str(tmp / "data")]


def _output_not_empty(tmp: Path) -> list[str]:
    write(tmp / "model" / "keep.txt", "precious\n")
    return good_csv()(tmp)


def _overwrite_foreign_directory(tmp: Path) -> list[str]:
    write(tmp / "model" / "keep.txt", "precious\n")
    return [*good_csv()(tmp), "--overwrite"]


def _output_is_file(tmp: Path) -> list[str]:
    write(tmp / "model", "a file\n")
    return good_csv()(tmp)


def _output_under_file(tmp: Path) -> list[str]:
    write(tmp / "blocker", "a file\n")
    return [*good_csv()(tmp), "--output", str(tmp / "blocker" / "model")]


def _output_unwritable(tmp: Path) -> list[str]:
    locked = tmp / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    return [*good_csv()(tmp), "--output", str(locked / "model")]


def _duplicates(tmp: Path) -> list[str]:
    text = HEADER + GOOD_ROWS + "1,10,2.0\n1,10,1.0\n3,12,1.0\n"
    return ["--input", write(tmp / "ratings.csv", text), "--duplicates", "error"]


def _checkpoint_left(tmp: Path) -> list[str]:
    """A checkpoint directory holding the complete checkpoint of an earlier run."""
    marker = {"format": FORMAT, "format_version": 1, "sweep": 3, "history": [], "fingerprint": {}}
    write(tmp / "ckpt" / SLOTS[0] / MARKER / "part-00000.txt", json.dumps(marker))
    return good_csv("--checkpoint-dir", str(tmp / "ckpt"))(tmp)


NAN, INF = float("nan"), float("inf")

CASES = [
    Case(
        "parquet files disagree on a column's type",
        parquet_files_disagreeing(),
        ("cannot read the ratings", "user_id", "b.parquet"),
    ),
    # ------------------------------------------------------------ weights
    Case(
        "implicit zero rating",
        with_args(csv_input(HEADER + GOOD_ROWS + "4,10,0\n"), "--implicit"),
        ("implicit confidence", "> 0", "user=4"),
    ),
    Case(
        "weight column with nulls",
        with_args(
            csv_input("user_id,item_id,rating,w\n1,10,4.0,1.0\n2,10,3.0,\n"), "--weight-col", "w"
        ),
        ("weight column 'w'", "1 null"),
    ),
    Case(
        "weight column negative",
        with_args(
            csv_input("user_id,item_id,rating,w\n1,10,4.0,1.0\n2,10,3.0,-2\n"), "--weight-col", "w"
        ),
        ("weight column 'w'", "not > 0"),
    ),
    Case(
        "weight column missing",
        good_csv("--weight-col", "nope"),
        ("missing column nope",),
    ),
    Case(
        "row weights scheme",
        good_csv("--row-weights", "linear:x"),
        ("row_weights", "linear:x"),
    ),
    Case(
        "weight column on synthetic data",
        lambda tmp: ["--input", "synthetic", "--col-weights", "col:w"],
        ("weight columns (w)", "synthetic"),
    ),
    Case("config implicit not a boolean", config("implicit_prefs = 'yes'\n"), ("implicit",)),
    # ------------------------------------------------------------ checkpoints
    Case("resume without a directory", good_csv("--resume"), ("--resume needs --checkpoint-dir",)),
    Case("config resume not a boolean", config("resume = 'yes'\n"), ("resume", "true or false")),
    Case(
        "checkpoint of an earlier run without --resume",
        _checkpoint_left,
        ("holds a checkpoint of sweep 3", "--resume", "--overwrite"),
    ),
    Case(
        "checkpoint directory inside the model",
        lambda tmp: good_csv("--checkpoint-dir", str(tmp / "model" / "ckpt"))(tmp),
        ("overlaps the model",),
    ),
    Case("cg steps", good_csv("--solver", "cg", "--cg-steps", "0"), ("cg_steps", "0")),
    Case("negative tol", good_csv("--tol", "-1"), ("tol", "-1")),
    Case("time split without timestamps", good_csv("--split", "time"), ("timestamp column",)),
    # ------------------------------------------------------------ input files
    Case("missing input", _missing_input, ("input not found", "nowhere.csv")),
    Case("unreadable input", _unreadable_input, ("not readable", "ratings.csv"), permissions=True),
    Case(
        "corrupt parquet",
        csv_input("this is not parquet\n", name="ratings.parquet"),
        ("cannot read", "ratings.parquet", "parquet"),
    ),
    Case("unknown layout", _unknown_layout, ("could not determine the input format", "--format")),
    Case(
        "missing rating column",
        csv_input("user_id,item_id,score\n1,10,4.0\n"),
        ("missing column rating", "user_id, item_id, score"),
    ),
    Case(
        "missing renamed column",
        good_csv("--user-col", "uid"),
        ("missing column uid", "columns present"),
    ),
    Case(
        "missing timestamp column",
        good_csv("--timestamp-col", "ts"),
        ("missing column ts",),
    ),
    Case(
        "unsupported id type",
        parquet_input({**ids([1.5, 2.5], [10, 11]), "rating": pa.array([1.0, 2.0])}),
        ("user id column", "user_id", "double"),
    ),
    Case(
        "unsupported rating type",
        parquet_input({**ids([1, 2], [10, 11]), "rating": pa.array([True, False])}),
        ("rating column", "boolean"),
    ),
    # ------------------------------------------------------------ bad rows
    Case(
        "null user id",
        csv_input(HEADER + GOOD_ROWS + ",13,2.0\n,14,3.0\n"),
        ("2 rows have a null user id", "e.g. item=13, rating=2.0"),
    ),
    Case(
        "null item id",
        csv_input(HEADER + GOOD_ROWS + "4,,2.0\n"),
        ("1 row has a null item id", "e.g. user=4, rating=2.0"),
    ),
    Case(
        "null rating",
        csv_input(HEADER + GOOD_ROWS + "4,13,\n"),
        ("1 row has a null rating", "e.g. user=4, item=13"),
    ),
    Case(
        "null rating typed",
        parquet_input({**ids([1, 2, 3], [10, 11, 12]), "rating": pa.array([1.0, None, None])}),
        ("2 rows have a null rating", "e.g. user=2, item=11"),
    ),
    Case(
        "non-numeric rating",
        csv_input(HEADER + GOOD_ROWS + "4,13,abc\n5,13,4.x\n"),
        ("2 rows have a non-numeric rating", "e.g. user=4, item=13, rating='abc'"),
    ),
    Case(
        "NaN rating",
        parquet_input({**ids([1, 2, 3], [10, 11, 12]), "rating": pa.array([1.0, NAN, 2.0])}),
        ("1 row has a NaN or infinite rating", "e.g. user=2, item=11, rating=nan"),
    ),
    Case(
        "infinite rating",
        parquet_input({**ids([1, 2, 3], [10, 11, 12]), "rating": pa.array([INF, 1.0, -INF])}),
        ("2 rows have a NaN or infinite rating", "e.g. user=1, item=10, rating=inf"),
    ),
    Case(
        "NaN and infinite rating text",
        csv_input(HEADER + GOOD_ROWS + "4,13,NaN\n5,13,Infinity\n"),
        ("2 rows have a NaN or infinite rating", "e.g. user=4, item=13"),
    ),
    Case(
        "string ids in the example",
        csv_input("user_id,item_id,rating\nu1,i1,1.0\nu2,i2,bad\n"),
        ("1 row has a non-numeric rating", "user='u2', item='i2', rating='bad'"),
    ),
    # ------------------------------------------------------------ delimited text
    Case(
        "too many fields",
        csv_input(HEADER + GOOD_ROWS + "4,13,2.0,99\n"),
        ("1 row has another number of fields than the header line's 3", "'4,13,2.0,99'"),
    ),
    Case(
        "csv without a header line",
        csv_input(GOOD_ROWS),
        ("ratings.csv seems to have no header line", "--no-header"),
    ),
    Case(
        "tsv with a header line",
        csv_input("user_id\titem_id\trating\n1\t10\t4.0\n", name="ratings.tsv"),
        ("seems to have a header line (user_id, item_id, rating)", "--header"),
    ),
    Case(
        "id not an integer",
        with_args(csv_input(HEADER + GOOD_ROWS + "u4,13,2.0\n"), "--id-type", "integer"),
        ("1 row has an id in column 'user_id' that is not a 64-bit integer", "'u4'"),
    ),
    Case(
        "weight column without a header line",
        with_args(csv_input(GOOD_ROWS), "--no-header", "--weight-col", "w"),
        ("weight columns (w) need named columns", "--header"),
    ),
    Case(
        "too few columns without a header line",
        with_args(csv_input("1,10\n2,11\n"), "--no-header"),
        ("has 2 column(s)", "expected user, item, rating"),
    ),
    Case("unknown id type", good_csv("--id-type", "text"), ("--id-type", "'text'")),
    Case("config bad id type", config("id_type = 'text'\n"), ("id type", "'text'")),
    Case("config bad header", config("header = 'yes'\n"), ("header must be true or false",)),
    # ------------------------------------------------------------ empty data
    Case("header only", csv_input(HEADER), ("no ratings",)),
    Case("zero-byte file", csv_input(""), ("no ratings",)),
    Case(
        "empty parquet",
        parquet_input(
            {
                "user_id": pa.array([], pa.int64()),
                "item_id": pa.array([], pa.int64()),
                "rating": pa.array([], pa.float64()),
            }
        ),
        ("no ratings",),
    ),
    Case(
        "nothing left for training",
        good_csv("--holdout-fraction", "0.999999"),
        ("no ratings left for training",),
    ),
    # ------------------------------------------------------------ hyperparameters
    Case("rank 0", good_csv("--rank", "0"), ("rank", ">= 1", "0")),
    Case("rank huge", good_csv("--rank", "100000"), ("rank must be at most 4096", "GiB")),
    Case("negative rank", good_csv("--rank", "-3"), ("rank", ">= 1", "-3")),
    Case("sweeps 0", good_csv("--sweeps", "0"), ("sweeps", ">= 1")),
    Case("holdout 1", good_csv("--holdout-fraction", "1"), ("holdout fraction", "[0, 1)")),
    Case("holdout negative", good_csv("--holdout-fraction", "-0.1"), ("holdout fraction",)),
    Case("holdout NaN", good_csv("--holdout-fraction", "nan"), ("holdout fraction", "nan")),
    Case(
        "w0 and lambda both 0",
        good_csv("--unobserved-weight", "0", "--regularization", "0"),
        ("unobserved_weight and regularization cannot both be 0",),
    ),
    Case(
        "negative unobserved weight",
        good_csv("--unobserved-weight", "-0.1"),
        ("unobserved_weight", ">= 0", "-0.1"),
    ),
    Case(
        "negative regularization",
        good_csv("--regularization", "-1"),
        ("regularization", ">= 0", "-1"),
    ),
    Case("negative reg exponent", good_csv("--reg-exponent", "-1"), ("reg_exponent", ">= 0")),
    Case("negative reg offset", good_csv("--reg-offset", "-2"), ("reg_offset", ">= 0")),
    Case("negative row weights", good_csv("--row-weights", "-2"), ("row_weights", ">= 0")),
    Case("infinite col weights", good_csv("--col-weights", "inf"), ("col_weights", "finite")),
    Case(
        "bad unobserved col weights",
        good_csv("--unobserved-col-weights", "power:half"),
        ("unobserved_col_weights must be uniform or power:E", "'power:half'"),
    ),
    Case("zero user blocks", good_csv("--num-user-blocks", "0"), ("num_user_blocks", ">= 1")),
    # ------------------------------------------------------------ duplicates
    Case(
        "duplicates error",
        _duplicates,
        ("2 (user, item) pairs occur more than once", "user=1, item=10: 3 ratings"),
    ),
    Case(
        "duplicates last without timestamp",
        good_csv("--duplicates", "last"),
        ("'last'", "timestamp column"),
    ),
    # ------------------------------------------------------------ output location
    Case("output not empty", _output_not_empty, ("not empty", "--overwrite")),
    Case(
        "overwrite a directory walsspark did not write",
        _overwrite_foreign_directory,
        ("refusing to overwrite", "not an output walsspark wrote"),
    ),
    Case("output is a file", _output_is_file, ("existing file",)),
    Case("output under a file", _output_under_file, ("cannot be created", "blocker", "is a file")),
    Case("output unwritable", _output_unwritable, ("no write permission",), permissions=True),
    # ------------------------------------------------------------ command line
    Case("no input option", lambda tmp: [], ("no input given", "--input")),
    Case("rank not a number", good_csv("--rank", "abc"), ("--rank", "invalid int value", "'abc'")),
    Case("unknown policy", good_csv("--duplicates", "max"), ("--duplicates", "'max'")),
    Case("unknown option", good_csv("--bogus"), ("unrecognized arguments: --bogus",)),
    Case("seed too large", good_csv("--seed", str(2**64)), ("seed", "64-bit")),
    # ------------------------------------------------------------ config file
    Case("config missing", config(None), ("config file not found", "conf.toml")),
    Case(
        "config malformed",
        config("rank = = 2\n"),
        ("cannot read config file", "conf.toml"),
    ),
    Case(
        "config unknown key",
        config("rank = 2\nbogus = 1\n"),
        ("unknown option 'bogus'",),
    ),
    Case(
        "config unknown key in table",
        config("[train]\nranks = 2\n"),
        ("'ranks'",),
    ),
    Case("config not UTF-8", config(b"rank = '\xff'\n"), ("cannot read config file",)),
    Case("config is a directory", _config_directory, ("cannot read config file", "conf.toml")),
    Case(
        "config key outside [train]",
        config("rank = 2\n[train]\nsweeps = 1\n"),
        ("'rank' outside [train]",),
    ),
    Case(
        "config bad value",
        config("holdout_fraction = 1.5\n"),
        ("holdout fraction", "1.5"),
    ),
    Case(
        "config bad type",
        config("rank = 2\nsweeps = 'many'\n"),
        ("sweeps", "'many'"),
    ),
    Case(
        "config boolean rank",
        config("[train]\nrank = true\n"),
        ("rank", "True"),
    ),
    Case("config bad seed", config("seed = 'x'\n"), ("seed", "'x'")),
    Case("config bad input", config("input = 5\n"), ("'input'", "must be a string")),
    Case("config bad column name", config("user_col = 5\n"), ("user_col", "5")),
    Case(
        "config bad overwrite",
        config("overwrite = 'yes'\n"),
        ("overwrite", "'yes'"),
    ),
]


@pytest.fixture
def no_training(monkeypatch):
    """Make any attempt to train fail the test."""

    def fit(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(walsspark.train, "fit", fit)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``, with file contents (None for directories)."""
    tree: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        try:
            content = None if path.is_dir() else path.read_bytes()
        except PermissionError:
            content = None
        tree[str(path.relative_to(root))] = content
    return tree


ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
_OWNER_BITS = {os.R_OK: stat.S_IRUSR, os.W_OK: stat.S_IWUSR, os.X_OK: stat.S_IXUSR}


def owner_bits_access(real: Callable[..., bool]) -> Callable[..., bool]:
    """``os.access`` as a non-root owner sees it (root is granted read and write always)."""

    def access(path, mode, *args, **kwargs) -> bool:
        if not real(path, mode, *args, **kwargs):
            return False
        bits = os.stat(path).st_mode
        return all(bits & bit for flag, bit in _OWNER_BITS.items() if mode & flag)

    return access


def train_args(tmp: Path, *extra: str) -> list[str]:
    return ["train", "--output", str(tmp / "model"), "--rank", "2", "--sweeps", "1", *extra]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_one_line_exit_2_nothing_written(
    spark, tmp_path, capsys, monkeypatch, no_training, case
):
    if case.permissions and ROOT:
        monkeypatch.setattr(os, "access", owner_bits_access(os.access))
    # Training never runs here, so --rank and --sweeps are left to each case (a config
    # file's values would lose to them).
    args = ["train", "--output", str(tmp_path / "model"), *case.setup(tmp_path)]
    before = snapshot(tmp_path)

    status = main(args)

    captured = capsys.readouterr()
    assert_one_error_line(status, captured, case.expected)
    assert captured.out == ""
    assert snapshot(tmp_path) == before
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


# ---------------------------------------------------------------------------- success


def test_train_saves_a_model_and_overwrite_replaces_it(spark, tmp_path, capsys):
    text = (
        "user_id,item_id,rating,ts\n"
        "u1,10,4.0,1\nu1,11,3.0,2\nu2,10,5.0,3\nu2,12,1.0,4\nu3,11,2.0,5\nu3,12,4.5,6\n"
        "u3,12,3.5,7\n"  # a duplicate pair: averaged by default, the later one under 'last'
    )
    data = write(tmp_path / "ratings.csv", text)
    out = tmp_path / "model"
    args = ["train", "--input", data, "--output", str(out), "--rank", "2", "--sweeps", "1"]

    assert main([*args, "--holdout-fraction", "0"]) == 0
    captured = capsys.readouterr()
    assert "model written to" in captured.out and "error" not in captured.err
    assert sorted(os.listdir(out)) == sorted(
        [METADATA, "item_factors", "user_factors", "item_blocks", "user_blocks"]
    )
    metadata = read_metadata(out)
    assert metadata["params"]["rank"] == 2
    assert metadata["data"]["num_train_ratings"] == 6
    model = SavedModel.load(spark, str(out))
    users = {row["id"]: row["features"] for row in model.user_factors.collect()}
    items = {row["id"]: row["features"] for row in model.item_factors.collect()}
    assert set(users) == {"u1", "u2", "u3"} and set(items) == {10, 11, 12}
    assert {len(f) for f in [*users.values(), *items.values()]} == {2}

    # An existing model is kept unless --overwrite is given.
    before = snapshot(out)
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert snapshot(out) == before

    replace = [*args, "--rank", "3", "--overwrite", "--timestamp-col", "ts", "--duplicates", "last"]
    assert main(replace) == 0
    model = SavedModel.load(spark, str(out))
    assert model.rank == 3 and model.metadata["params"]["duplicates"] == "last"
    assert {len(row["features"]) for row in model.item_factors.collect()} == {3}
    assert sorted(os.listdir(out)) == sorted(
        [METADATA, "item_factors", "user_factors", "item_blocks", "user_blocks"]
    )
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_load_rejects_what_is_not_a_model(spark, tmp_path):
    with pytest.raises(InputError, match="model directory not found"):
        SavedModel.load(spark, str(tmp_path / "nowhere"))

    plain = tmp_path / "plain"
    write(plain / "notes.txt", "hello\n")
    with pytest.raises(InputError, match=f"no {METADATA}/"):
        SavedModel.load(spark, str(plain))

    for broken, words in [
        ("{not json", "cannot read the metadata"),
        ("", "metadata is empty"),
        (json.dumps({"params": {"rank": 2}}), "format tag"),
        (json.dumps({"format": "walsspark-model", "format_version": 9}), "version 9 is newer"),
        (json.dumps({"format": "walsspark-model", "format_version": 2}), "no user_factors/"),
    ]:
        write_metadata(plain, broken)
        with pytest.raises(InputError, match=words):
            SavedModel.load(spark, str(plain))

    # Models of format version 1 kept their metadata in a metadata.json file.
    legacy = tmp_path / "legacy"
    write(legacy / LEGACY_METADATA_FILE, "{not json")
    with pytest.raises(InputError, match="cannot read"):
        SavedModel.load(spark, str(legacy))
    write(legacy / LEGACY_METADATA_FILE, json.dumps({"format": "walsspark-model"}))
    with pytest.raises(InputError, match="user_factors"):
        SavedModel.load(spark, str(legacy))


def test_a_damaged_model_is_refused_with_one_line(spark, tmp_path, capsys):
    """An edited rank, or a deleted factor or block part file, is caught before serving."""
    csv = tmp_path / "r.csv"
    rows = "".join(f"u{u},{i},{(u + i) % 5 + 1}\n" for u in range(30) for i in range(u % 7, 40, 6))
    csv.write_text("user_id,item_id,rating\n" + rows)
    model = tmp_path / "model"
    args = ["train", "--input", str(csv), "--output", str(model), "--rank", "2", "--sweeps", "1"]
    assert main([*args, "--num-user-blocks", "2", "--num-item-blocks", "2"]) == 0
    capsys.readouterr()

    def refused(path, *words):
        status = main(["recommend", "--model", str(path), "--k", "2", "--output", str(path) + "-r"])
        assert_one_error_line(status, capsys.readouterr(), ("damaged walsspark model", *words))

    edited = tmp_path / "edited"
    shutil.copytree(model, edited)
    metadata = read_metadata(edited)
    metadata["params"]["rank"] = 5
    write_metadata(edited, metadata)
    refused(edited, "user_factors/", "rank 5")

    # A part file lost from the blocks (one file per block), or rows lost from the factors.
    damaged = tmp_path / "without-a-block"
    shutil.copytree(model, damaged)
    parts = sorted((damaged / "user_blocks").glob("part-*"))
    assert len(parts) == 2, parts
    parts[0].unlink()
    refused(damaged, "user_blocks/", "records 30")

    for name, keep_checksum in (("fewer-factors", False), ("stale-checksum", True)):
        damaged = tmp_path / name
        shutil.copytree(model, damaged)
        (part,) = sorted((damaged / "user_factors").glob("part-*"))
        pq.write_table(pq.read_table(part).slice(0, 10), part)
        if keep_checksum:  # Hadoop's .crc beside it no longer matches: a read error
            refused(damaged, "error while reading file")
        else:
            (part.parent / f".{part.name}.crc").unlink()
            refused(damaged, "user_factors/", "holds 10 ids", "records 30")
