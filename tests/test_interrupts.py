"""Runs of ``walsspark train`` and ``walsspark recommend`` interrupted (SIGINT) or killed
(SIGKILL) at several points: nothing is left that loads or looks complete, and a rerun
succeeds.

Each run is the console script in a process group of its own (as a terminal would start
it), on small synthetic data. A kill point is a condition polled while the run goes: the
JVM has started (Spark's start-up), a ``sweep 1/`` log line, or a staging directory of the
output holding its first table (the write). SIGINT goes to the driver's PID alone or to the
whole group (a terminal's Ctrl-C), SIGKILL to the whole group. Every process a run started
(the JVM and the Python workers too, found by an environment marker) must be gone after
it; the test kills what is left either way.

Kill points: ``train`` 5 (SIGINT at start-up, in a sweep and in the write; SIGKILL at
start-up and in the write), ``recommend`` 2 (SIGINT and SIGKILL in the write, the latter
while replacing an earlier output with ``--overwrite``). The runs go two at a time.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_assertions import assert_one_error_line

from walsspark.cli import main
from walsspark.errors import InputError
from walsspark.model import read_metadata
from walsspark.paths import PathResolver
from walsspark.staging import remove_stale_staging
from walsspark.storage import Storage
from walsspark.synthetic import synthetic_ratings, write_ratings_parquet

SCRIPT = os.path.join(os.path.dirname(sys.executable), "walsspark")
SPARK = ["--master", "local[2]", "--conf", "spark.ui.enabled=false"]
TRAIN = ["--rank", "3", "--sweeps", "2", "--holdout-fraction", "0", *SPARK]
MARKER = "WALSSPARK_INTERRUPT_TEST"
# A line of Python's log format (walsspark.cli) or of the JVM's (walsspark/log4j2.properties).
LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"|\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) \S+: )"
)
# What the Java launcher prints at start-up for Spark 4 (no logger, no log format).
JVM_NOTICE = "WARNING: Using incubator modules"
RUN_TIMEOUT = 240.0
LOCAL = Storage(PathResolver())


@dataclass
class Run:
    """A finished run: exit status (negative: the signal), stderr lines, stdout, whether
    the kill point came, and what its output path and staging siblings held right after
    (path: None for a complete output, else why it is not one)."""

    status: int
    stderr: list[str]
    stdout: str
    triggered: bool
    left: dict[str, str | None]


def outputs_left(target: str) -> dict[str, str | None]:
    """The target and its staging siblings that exist, each with None when it looks
    complete (a model that loads, or a Spark output with its ``_SUCCESS``), else the
    one-line refusal of a model reader (what ``recommend``, ``evaluate`` and ``project``
    check before Spark starts)."""
    left: dict[str, str | None] = {}
    for path in [target, *glob.glob(f"{glob.escape(target)}.tmp-*")]:
        if not os.path.exists(path):
            continue
        try:
            read_metadata(LOCAL, path)
            left[path] = None
        except InputError as refused:
            complete = os.path.exists(os.path.join(path, "_SUCCESS"))
            left[path] = None if complete else str(refused)
    return left


def _processes_of(token: str) -> list[int]:
    """PIDs of the processes a run started (the driver, the JVM, Spark's Python workers):
    they all inherit the run's environment marker."""
    needle = f"{MARKER}={token}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if needle in handle.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _java_started(token: str) -> bool:
    for pid in _processes_of(token):
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as handle:
                if handle.read().strip() == "java":
                    return True
        except OSError:
            continue
    return False


def run_cli(
    args: list[str],
    target: str,
    trigger: Callable[[list[str], str], bool] | None = None,
    sig: signal.Signals = signal.SIGINT,
    group: bool = True,
) -> Run:
    """Run the console script; when ``trigger(stderr lines so far, token)`` holds, send
    ``sig`` to the driver (``group``: to its process group). Waits until every process of
    the run has ended, and asserts that none outlives it by more than a few seconds."""
    token = uuid.uuid4().hex
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, **{MARKER: token})
    process = subprocess.Popen(
        [SCRIPT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    lines: list[str] = []
    out: list[str] = []
    readers = [
        threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True),
        threading.Thread(target=lambda: out.extend(process.stdout), daemon=True),
    ]
    for reader in readers:
        reader.start()
    triggered = False
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while trigger is not None and process.poll() is None and time.monotonic() < deadline:
            if trigger(lines, token):
                (os.killpg if group else os.kill)(process.pid, sig)
                triggered = True
                break
            time.sleep(0.02)
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
        for reader in readers:  # until the JVM, which shares the pipes, has ended too
            reader.join(30)
        left = _processes_of(token)
        for _ in range(100):  # a JVM ends once its driver's pipe closes
            if not left:
                break
            time.sleep(0.1)
            left = _processes_of(token)
        assert not left, f"processes left behind by {args[0]}: {left}"
    finally:
        for pid in [process.pid, *_processes_of(token)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()
    stderr = [line.rstrip("\n") for line in lines]
    return Run(process.returncode, stderr, "".join(out), triggered, outputs_left(target))


def logged(text: str) -> Callable[[list[str], str], bool]:
    return lambda lines, token: any(text in line for line in lines)


def staging_holds(target: str, pattern: str = "*") -> Callable[[list[str], str], bool]:
    """Once a staging sibling of ``target`` holds something matching ``pattern``."""
    return lambda lines, token: bool(glob.glob(f"{glob.escape(target)}.tmp-*/{pattern}"))


def spark_starting(lines: list[str], token: str) -> bool:
    """The JVM runs, the session is not up yet (no line of walsspark's yet)."""
    return _java_started(token) and not any(" walsspark " in line for line in lines)


def assert_interrupted(run: Run) -> None:
    """Exit 130, one line that is no log line, no traceback, no output or staging left."""
    assert run.triggered, "\n".join(run.stderr[-20:])
    other = [line for line in run.stderr if not LOG_LINE.match(line) and JVM_NOTICE not in line]
    assert other == ["walsspark: interrupted"], "\n".join(run.stderr)
    assert not any("Traceback" in line for line in run.stderr)
    assert run.status == 130, "\n".join(run.stderr)
    assert run.left == {}


def assert_killed(run: Run) -> None:
    """Killed at its kill point; whatever it left is refused, in one line."""
    assert run.triggered and run.status == -signal.SIGKILL, "\n".join(run.stderr[-20:])
    for path, refusal in run.left.items():
        assert refusal is not None, f"{path} looks complete"
        assert "\n" not in refusal


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("interrupts")
    table = synthetic_ratings(num_users=200, num_items=120, rank=3, mean_ratings_per_user=10)
    write_ratings_parquet(table, str(root / "ratings.parquet"))
    return root


def train_args(data: Path, name: str, *extra: str) -> list[str]:
    source = str(data / "ratings.parquet")
    return ["train", "--input", source, "--output", str(data / name), *TRAIN, *extra]


# (name, kill point, signal, to the whole group); the last one is run again afterwards.
TRAIN_KILLS = [
    ("start-sigint", spark_starting, signal.SIGINT, False),
    ("start-sigkill", spark_starting, signal.SIGKILL, True),
    ("sweep-sigint", logged("sweep 1/"), signal.SIGINT, True),
    ("write-sigint", "user_factors/part-*", signal.SIGINT, False),
    ("write-sigkill", "user_factors/part-*", signal.SIGKILL, True),
]
RERUN = "write-sigkill"


def run_parallel(jobs: dict[str, Callable[[], object]]) -> dict[str, object]:
    """Run the jobs two at a time (each run mostly waits on its own JVM), in the order
    given: longest first balances the two lanes best."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def train_runs(data) -> dict[str, Run]:
    """The train runs of TRAIN_KILLS, and ("rerun") the one killed while writing run
    again: without ``--overwrite`` when the kill left no target, as a user would."""

    def kill(case) -> Run:
        name, point, sig, group = case
        target = str(data / name)
        trigger = staging_holds(target, point) if isinstance(point, str) else point
        return run_cli(train_args(data, name), target, trigger, sig, group)

    def kill_and_rerun() -> tuple[Run, Run]:
        killed = kill(TRAIN_KILLS[-1])
        target = str(data / RERUN)
        extra = ["--overwrite"] if os.path.exists(target) else []
        return killed, run_cli(train_args(data, RERUN, *extra), target)

    jobs = {"rerun": kill_and_rerun}
    jobs.update({case[0]: (lambda case=case: kill(case)) for case in TRAIN_KILLS[:-1]})
    runs = run_parallel(jobs)
    runs[RERUN], runs["rerun"] = runs["rerun"]
    return runs


@pytest.mark.parametrize("name", [case[0] for case in TRAIN_KILLS if case[2] == signal.SIGINT])
def test_interrupted_train_prints_one_line_and_leaves_nothing(train_runs, data, name):
    assert_interrupted(train_runs[name])


@pytest.mark.parametrize("name", [case[0] for case in TRAIN_KILLS if case[2] == signal.SIGKILL])
def test_killed_train_leaves_nothing_that_loads(train_runs, data, name):
    assert_killed(train_runs[name])


def test_rerun_after_a_killed_write_succeeds_and_removes_its_staging(train_runs, data):
    target = str(data / RERUN)
    stale = [path for path in train_runs[RERUN].left if path != target]
    assert stale, "the kill in the write left no staging directory to remove"
    assert train_runs["rerun"].status == 0, "\n".join(train_runs["rerun"].stderr)
    assert train_runs["rerun"].left == {target: None}


def recommend_args(model: str, output: str, *extra: str) -> list[str]:
    return ["recommend", "--model", model, "--output", output, "--k", "3", *SPARK, *extra]


@pytest.fixture(scope="module")
def recommend_runs(train_runs, data) -> dict[str, Run]:
    """``recommend`` interrupted in its write (a new output), and killed in its write
    while ``--overwrite`` replaces an earlier output (``recs``, a Parquet part file)."""
    model = str(data / RERUN)
    fresh, earlier = str(data / "recs-sigint"), str(data / "recs")
    os.makedirs(earlier)
    table = pa.table({"id": [1], "recommendations": [[{"id": 2, "score": 1.0}]]})
    pq.write_table(table, os.path.join(earlier, "part-00000.parquet"))
    Path(earlier, "_SUCCESS").touch()
    return run_parallel(
        {
            "sigint": lambda: run_cli(
                recommend_args(model, fresh), fresh, staging_holds(fresh), signal.SIGINT, True
            ),
            "sigkill": lambda: run_cli(
                recommend_args(model, earlier, "--overwrite"),
                earlier,
                staging_holds(earlier),
                signal.SIGKILL,
                True,
            ),
        }
    )


def test_interrupted_recommend_prints_one_line_and_leaves_nothing(recommend_runs, data):
    assert_interrupted(recommend_runs["sigint"])


def test_recommend_killed_while_overwriting_keeps_the_old_output(recommend_runs, data):
    """The old output stays whole (it is replaced by one rename at the end); a staging
    directory left holds no ``_SUCCESS`` (Spark's mark of a complete output), and the next
    run with ``--overwrite`` succeeds and removes it."""
    target = str(data / "recs")
    killed = recommend_runs["sigkill"]
    assert killed.triggered and killed.status == -signal.SIGKILL, "\n".join(killed.stderr)
    assert sorted(os.listdir(target)) == ["_SUCCESS", "part-00000.parquet"]
    assert [path for path, refusal in killed.left.items() if refusal is None] == [target]
    again = run_cli(recommend_args(str(data / RERUN), target, "--overwrite"), target)
    assert again.status == 0, "\n".join(again.stderr)
    assert again.left == {target: None}  # complete, and no staging directory left
    assert pq.read_table(target).num_rows > 1


def test_only_exact_staging_siblings_of_the_target_are_removed(tmp_path):
    """A rerun removes what a killed run of the same target left (``<target>.tmp-`` and 8
    hex digits, a directory), and nothing else."""
    target = tmp_path / "model"
    stale = [tmp_path / "model.tmp-0a1b2c3d", tmp_path / "model.tmp-ffffffff"]
    kept = [
        tmp_path / "model.tmp-0A1B2C3D",  # not what walsspark names them
        tmp_path / "model.tmp-0a1b2c3",
        tmp_path / "model.tmp-0a1b2c3d4",
        tmp_path / "model.tmp-0a1b2c3d.old",
        tmp_path / "model2.tmp-0a1b2c3d",  # another target's
        tmp_path / "mode.tmp-0a1b2c3d",
    ]
    for path in [*stale, *kept]:
        (path / "user_factors").mkdir(parents=True)
    (tmp_path / "model.tmp-12345678").write_text("a file, not a staging directory")
    (tmp_path / "model.tmp-87654321").symlink_to(kept[0])
    assert sorted(remove_stale_staging(str(target))) == sorted(map(str, stale))
    assert not any(path.exists() for path in stale)
    assert all(path.is_dir() for path in kept)
    assert (tmp_path / "model.tmp-12345678").is_file()
    assert (tmp_path / "model.tmp-87654321").is_symlink()


def test_a_model_without_its_metadata_is_refused_as_incomplete(tmp_path):
    torn = tmp_path / "model.tmp-0a1b2c3d"
    (torn / "user_factors").mkdir(parents=True)
    (torn / "user_factors" / "part-00000.parquet").write_bytes(b"")
    with pytest.raises(InputError, match=r"^incomplete walsspark model \(no metadata/"):
        read_metadata(LOCAL, str(torn))


def test_every_model_reader_refuses_a_torn_model_in_one_line(
    train_runs, data, tmp_path, spark, capsys
):
    """A model whose write stopped before ``metadata/`` (what a kill in the write leaves)
    is refused by ``recommend``, ``evaluate``, ``project`` and ``WALSModel.load``."""
    from walsspark.ml import WALSModel

    torn = tmp_path / "torn"
    shutil.copytree(data / RERUN, torn)
    shutil.rmtree(torn / "metadata")
    ratings = str(data / "ratings.parquet")
    expected = ("incomplete walsspark model (no metadata/", str(torn))
    for command in (
        ["recommend", "--model", str(torn)],
        ["evaluate", "--model", str(torn), "--test", ratings],
        ["project", "--model", str(torn), "--input", ratings, "--output", str(tmp_path / "p")],
    ):
        assert_one_error_line(main(command), capsys.readouterr(), expected)
    with pytest.raises(InputError, match=r"^incomplete walsspark model \(no metadata/"):
        WALSModel.load(str(torn))
