"""The whole command chain on a file system that Python cannot see (Hadoop viewfs).

The viewfs mount ``viewfs://wals/data`` of the test session (conftest.py) and, in fresh
processes, a mount ``t`` made the *default* file system, so that scheme-less paths such as
``/data/model`` go there as they would go to HDFS on a cluster: on classic Spark and on
Spark Connect (``SPARK_REMOTE=local[2]``). Every run must give the same factors,
recommendation lists, metrics, splits and projections, and the same one-line errors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_assertions import assert_one_error_line
from cli_chain import read_chain_outputs, run_chain, write_chain_inputs

from walsspark.cli import main
from walsspark.model import SavedModel

TESTS = Path(__file__).parent
OK_STEPS = ["split", "train", "users parquet", "users csv", "items parquet", "items csv"]
OK_STEPS += ["evaluate", "project"]
ERRORS = {
    "missing input": ("input not found", "missing.csv"),
    "existing output": ("not empty", "--overwrite"),
    "missing model": ("model directory not found", "no-model"),
    "existing evaluation": ("exists", "--overwrite"),
}


def check_statuses(results: dict, root: Path) -> None:
    for step in OK_STEPS:
        assert results[step]["status"] == 0, (step, results[step]["stderr"][-2000:])
    for step, words in ERRORS.items():
        lines = [
            line
            for line in results[step]["stderr"].splitlines()
            if not line.startswith(("20", "WARNING: Using incubator"))  # log lines
        ]
        assert results[step]["status"] == 2, (step, results[step])
        assert len(lines) == 1 and lines[0].startswith("walsspark: error: "), (step, lines)
        for word in words:
            assert word in lines[0], (step, lines[0])
    # The error cases wrote nothing.
    for name in ("model2", "recs-none"):
        assert not (root / name).exists()
    assert [p.name for p in root.iterdir() if ".tmp-" in p.name] == []


def assert_same_outputs(got: dict, expected: dict) -> None:
    for key in ("split", "train_recs_users", "train_recs_items", "users", "items"):
        assert got[key] == expected[key], key
    for key in ("users_csv", "items_csv", "projected_recs"):
        assert got[key] == expected[key], key
    for key in ("user_factors", "item_factors", "projected"):
        assert got[key].keys() == expected[key].keys(), key
        for id_, features in expected[key].items():
            np.testing.assert_allclose(got[key][id_], features, rtol=1e-5, atol=1e-6)
    assert got["evaluation"].keys() == expected["evaluation"].keys()
    for name, value in expected["evaluation"].items():
        assert got["evaluation"][name] == pytest.approx(value, rel=1e-6), name


@pytest.fixture(scope="module")
def classic_chain(spark, viewfs_root):
    """The chain in the test session, every path a viewfs URI."""
    root = Path(viewfs_root) / "chain"
    write_chain_inputs(root)
    results = run_chain("viewfs://wals/data/chain")
    check_statuses(results, root)
    return read_chain_outputs(root)


def test_chain_on_viewfs_gives_the_local_disk_results(spark, classic_chain, viewfs_root, tmp_path):
    # The same chain on the driver's own disk (staged and renamed there) agrees.
    write_chain_inputs(tmp_path)
    results = run_chain(str(tmp_path))
    check_statuses(results, tmp_path)
    assert_same_outputs(read_chain_outputs(tmp_path), classic_chain)
    # And every output has the same layout.
    viewfs = Path(viewfs_root) / "chain"
    for name in ("model", "train-recs", "recs-users", "evaluation", "projected", "split"):
        assert layout(tmp_path / name) == layout(viewfs / name), name


def layout(path: Path) -> list[str]:
    """Visible entries, part files by kind only."""
    found = []
    for entry in sorted(path.rglob("*")):
        name = entry.relative_to(path).as_posix()
        if entry.name.startswith((".", "_")):
            continue
        if entry.name.startswith("part-"):
            name = name.rsplit("/", 1)[0] + "/part-*" if "/" in name else "part-*"
        found.append(name)
    return sorted(set(found))


def run_job(tmp_path: Path, env_extra: dict, conf: list[str]) -> dict:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, **env_extra)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    completed = subprocess.run(
        [sys.executable, str(TESTS / "chain_job.py"), "/data", json.dumps(conf)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=str(tmp_path),
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert completed.returncode == 0 and lines, completed.stderr[-4000:]
    noise = [
        line
        for line in completed.stderr.splitlines()
        if line and not line.startswith("WARNING: Using incubator modules")
    ]
    assert noise == [], noise[:20]  # a quiet terminal: no Spark warnings, no banners
    return json.loads(lines[0][len("RESULT ") :])


def test_chain_with_viewfs_as_default_file_system(classic_chain, tmp_path):
    # Scheme-less paths resolve against fs.defaultFS, as on an HDFS cluster; the mount
    # table comes from SPARK_CONF_DIR's spark-defaults.conf, the default file system from
    # --conf, as a user would pass them.
    root = tmp_path / "fs"
    write_chain_inputs(root)
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "spark-defaults.conf").write_text(
        f"spark.hadoop.fs.viewfs.mounttable.t.link./data  file://{root}\n"
    )
    results = run_job(
        tmp_path,
        {"SPARK_CONF_DIR": str(conf_dir)},
        ["--conf", "spark.hadoop.fs.defaultFS=viewfs://t/"],
    )
    check_statuses(results, root)
    assert_same_outputs(read_chain_outputs(root), classic_chain)
    assert "viewfs://t/data/split" in results["split"]["stderr"]  # where the output went


def test_chain_on_spark_connect(classic_chain, tmp_path):
    root = tmp_path / "fs"
    write_chain_inputs(root)
    conf = [
        "--conf",
        f"spark.hadoop.fs.viewfs.mounttable.t.link./data=file://{root}",
        "--conf",
        "spark.hadoop.fs.defaultFS=viewfs://t/",
    ]
    results = run_job(tmp_path, {"SPARK_REMOTE": "local[2]"}, conf)
    check_statuses(results, root)
    assert "Spark Connect" in results["split"]["stderr"]
    assert_same_outputs(read_chain_outputs(root), classic_chain)


def test_models_move_between_file_systems(spark, classic_chain, viewfs_root, tmp_path, capsys):
    # A model written on viewfs, copied to the local disk, loads and recommends; and the
    # other way round.
    local = tmp_path / "model"
    shutil.copytree(Path(viewfs_root) / "chain" / "model", local)
    model = SavedModel.load(spark, str(local))
    assert model.user_factors.count() == len(classic_chain["user_factors"])
    back = Path(viewfs_root) / "copied-model"
    shutil.copytree(local, back)
    out = "viewfs://wals/data/copied-recs"
    assert main(["recommend", "--model", "viewfs://wals/data/copied-model", "--output", out,
                 "--k", "4"]) == 0  # fmt: skip
    assert "copied-recs" in capsys.readouterr().out


def test_overwrite_on_viewfs_replaces_the_whole_output(spark, classic_chain, viewfs_root, capsys):
    root = Path(viewfs_root)
    prefix = "viewfs://wals/data"
    shutil.copytree(root / "chain" / "model", root / "ow-model")
    args = ["project", "--model", f"{prefix}/ow-model", "--input", f"{prefix}/chain/new.csv"]
    assert main([*args, "--output", f"{prefix}/ow", "--k", "2"]) == 0
    assert (root / "ow" / "recommendations").is_dir()
    # Without --k this run writes no recommendations/: the old ones must not survive.
    assert main([*args, "--output", f"{prefix}/ow", "--overwrite"]) == 0
    assert not (root / "ow" / "recommendations").exists()
    assert (root / "ow" / "factors").is_dir()

    # A directory walsspark did not write is never deleted.
    (root / "precious").mkdir()
    (root / "precious" / "notes.txt").write_text("keep me\n")
    capsys.readouterr()
    status = main([*args, "--output", f"{prefix}/precious", "--overwrite"])
    assert_one_error_line(status, capsys.readouterr(), ("refusing to overwrite", "precious"))
    assert (root / "precious" / "notes.txt").read_text() == "keep me\n"

    # A model overwritten in place on viewfs: the new one, complete.
    train = ["train", "--input", f"{prefix}/chain/split/train", "--output", f"{prefix}/ow-model"]
    assert main([*train, "--rank", "2", "--sweeps", "1", "--holdout-fraction", "0",
                 "--overwrite"]) == 0  # fmt: skip
    model = SavedModel.load(spark, f"{prefix}/ow-model")
    assert model.rank == 2
    assert {len(r["features"]) for r in model.item_factors.collect()} == {2}
