"""What a user waits for: ``walsspark train`` against an MLlib ALS script, command to model.

Each run is ONE FRESH PROCESS, timed with :func:`time.perf_counter` from just before it is
spawned to its exit: interpreter start, imports, Java, the Spark session, reading, training,
evaluation, writing the model and shutting down all count, as they do for a user.

- walsspark: the console script as a user types it, MLlib's explicit ALS-WR objective
  (``--preset mllib-explicit``: unobserved weight 0, lambda scaled by each id's rating
  count)::

      .venv/bin/walsspark train --input DATA --user-col user_id --item-col item_id
          --rating-col rating --rank 64 --sweeps 10 --holdout-fraction 0.1
          --regularization 0.05 --preset mllib-explicit --seed 42
          --output TMPDIR/model --master local[2]

  It prints the holdout RMSE (its own seeded hash split, 10 % held out).
- MLlib: ``benchmarks/mllib_train_job.py`` run by the same Python: a ``local[2]`` session
  with the settings walsspark gives its own session that are not walsspark-specific (driver
  memory, log4j configuration, shuffle partitions, BLAS threads; see that script),
  ``randomSplit`` 90/10 with the seed, ``ALS(rank, maxIter, regParam,
  coldStartStrategy="drop", seed)`` with MLlib's default 10 x 10 blocks, the holdout RMSE
  from ``RegressionEvaluator``, ``model.write().overwrite().save(TMPDIR/mllib-model)``.

The two hold out different 10 % samples (walsspark's split is a hash of (seed, user, item),
MLlib's is ``randomSplit``), so their RMSEs agree only statistically. Both write to a fresh
temporary directory outside the repository (removed afterwards unless ``--keep``).

Runs are interleaved, walsspark, MLlib, then MLlib, walsspark, ... (``--repeats`` of each),
and the next one starts only once the last one's output pipes have closed, i.e. its JVM
(which outlives the Python process by a moment) is gone. Run 1 of each system is marked:
the first process of each in this benchmark, with the JVM's class data and the jars less
likely in the OS page cache (which this script does not drop). A ForeignCpuMonitor (from
``bench_train``) records the CPU time other processes took during each run.

Where the time goes
-------------------
walsspark: every line the process prints (stdout and stderr, read line by line in threads)
is timestamped with :func:`time.perf_counter` as it arrives; the ``walsspark`` logger's
INFO lines (the console script's default level) and the JVM's first line mark the phases:

``python``
    spawn -> the JVM's first line (``WARNING: Using incubator modules``, printed as the
    driver JVM boots): interpreter start, imports, walsspark's ``java -version`` check,
    Spark's launcher JVM building the driver's command line.
``jvm+session``
    -> ``Spark 4.x (classic Spark), master local[2]: ...; 2 task slots``: driver JVM start,
    SparkContext, session, the task-slot query (an ``EXPLAIN`` of ``range``). ``startup`` is
    the sum of the two (only it is given when no JVM line is seen).
``prepare``
    -> the start of training, i.e. the arrival of ``laid out N ratings ... (X s)`` minus
    its X: the path checks, reading the input, validating it (an aggregation pass),
    averaging duplicate pairs, the holdout split and the check that training is not empty.
``layout``
    X itself: what training does before its first sweep (counting the ratings, choosing
    the block counts, laying the ratings, and the holdout, out in blocks).
``sweep compute``
    sum of the seconds each ``sweep i/n loss L (S s)`` line reports.
``between sweeps``
    the rest of ``laid out`` -> last sweep line: whatever runs after a sweep's line and
    before the next sweep starts (holdout metrics of the sweep, when scored after it).
``finish``
    last sweep line -> ``model written to ...``: the last sweep's holdout metrics (when
    scored after it), the factor tables and blocks, writing the model.
``exit``
    -> the process exit: the printed summary, the interpreter's exit (the JVM, whose
    gateway closes then, shuts down right after; the next run waits for it).

MLlib: the script times its own phases (``imports``, ``session``, ``read`` and ``split``,
both lazy, ``fit``, which scans the data, ``evaluate``, ``save``) and prints them as JSON
on its last line with its first and last :func:`time.perf_counter` readings; that clock is
system-wide (``CLOCK_MONOTONIC`` on Linux), so ``python`` (spawn -> the script's first
statement) and ``exit`` (its last reading -> process exit) come out on this script's timeline.

Before the runs, four reference start-up costs are timed alone (median of 3 fresh
processes each): an empty ``python -c pass``, ``import walsspark.cli`` (what the console
script imports before it parses its options), ``import pyspark.sql`` and ``java -version``
(walsspark's Java check before it starts Spark).

With ``--spark-jobs``, both processes also write Spark's event log, and the last run of
each lists what Spark ran: every SQL query (a DataFrame action with all its jobs, labelled
with the action's call site) and every job outside a query (MLlib's RDD jobs), with its
start on the same timeline, wall and task seconds and the phase it started in. The event
log adds a little work to every run: leave it off for the timed comparison.

Example::

    .venv/bin/python benchmarks/bench_wall.py                 # ML-1M, 3 runs of each
    .venv/bin/python benchmarks/bench_wall.py --data ../shared/data/ml-100k/u.data --repeats 1
    .venv/bin/python benchmarks/bench_wall.py --json out/bench_wall.json --keep
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:  # bench_train sits next to this file
    sys.path.insert(0, str(BENCH_DIR))

from bench_train import (  # noqa: E402 - needs the path above; also puts the repo on sys.path
    ALTERNATIVE_DATA,
    DEFAULT_DATA,
    DEFAULT_REG,
    REPO_ROOT,
    ForeignCpuMonitor,
    _median,
    contention_warning,
    resolve_data,
)

MLLIB_JOB = BENCH_DIR / "mllib_train_job.py"
SYSTEMS = ("walsspark", "mllib")
LABELS = {"walsspark": "walsspark CLI", "mllib": "MLlib ALS script"}

# The walsspark logger's lines (cli.main: "%(asctime)s %(name)s %(levelname)s %(message)s").
LOG_PREFIX = r"^\S+ \S+ walsspark INFO "
SESSION_LINE = re.compile(LOG_PREFIX + r"Spark \S+ \(.*\), master .*task slots")
LAID_OUT_LINE = re.compile(LOG_PREFIX + r"laid out (\d+) ratings .*\(([0-9.]+) s\)")
# "sweep 3/10 loss 80047.1 (3.81 s)", with or without "holdout rmse R" before the seconds.
SWEEP_LINE = re.compile(LOG_PREFIX + r"sweep (\d+)/(\d+) loss (\S+)\b.*\(([0-9.]+) s\)\s*$")
WRITTEN_LINE = re.compile(LOG_PREFIX + r"model written to ")
# The driver JVM's first words (it is started with --add-modules jdk.incubator.vector).
JVM_LINE = re.compile(r"^WARNING: Using incubator modules")
# print_train_summary: "  rmse  0.937564"
RMSE_LINE = re.compile(r"^\s*rmse\s+([0-9.eE+-]+|n/a)\s*$")

WALS_PHASES = (
    "python",
    "jvm+session",
    "prepare",
    "layout",
    "sweep compute",
    "between sweeps",
    "finish",
    "exit",
)
MLLIB_PHASES = ("python", "imports", "session", "read", "split", "fit", "evaluate", "save", "exit")
# Sums shown in the report above the first of their parts: (name, parts).
GROUPS = {
    "walsspark": [("startup", ("python", "jvm+session")), ("sweeps", WALS_PHASES[4:6])],
    "mllib": [("startup", ("python", "imports", "session"))],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Wall time from command to saved model, one fresh process per run: the walsspark "
            "CLI (--preset mllib-explicit) against a Spark MLlib ALS script, interleaved; "
            "per-run times, medians, their ratio, holdout RMSEs and where the time goes."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA,
        help=(
            "ratings: parquet with --user-col, --item-col, --rating-col, or a MovieLens file "
            f"such as {ALTERNATIVE_DATA}; a relative path is looked up in the current "
            "directory, then relative to the repository root"
        ),
    )
    parser.add_argument("--user-col", default="user_id", help="user id column (parquet)")
    parser.add_argument("--item-col", default="item_id", help="item id column (parquet)")
    parser.add_argument("--rating-col", default="rating", help="rating column (parquet)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each system")
    parser.add_argument("--rank", type=int, default=64, help="number of latent factors")
    parser.add_argument("--sweeps", type=int, default=10, help="sweeps (MLlib maxIter)")
    parser.add_argument("--reg", type=float, default=DEFAULT_REG, help="lambda (regParam)")
    parser.add_argument("--holdout", type=float, default=0.1, help="holdout fraction")
    parser.add_argument("--seed", type=int, default=42, help="split and initialization seed")
    parser.add_argument("--master", default="local[2]", help="Spark master of both")
    parser.add_argument(
        "--walsspark",
        default=str(Path(sys.executable).with_name("walsspark")),
        help="the walsspark console script (default: next to this Python)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument("--keep", action="store_true", help="keep the runs' temp directories")
    parser.add_argument(
        "--spark-jobs",
        action="store_true",
        help="also record Spark's event log and list every Spark job by phase (adds work)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this file")
    args = parser.parse_args(argv)
    for name in ("rank", "sweeps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if not 0.0 < args.holdout < 1.0:
        parser.error("--holdout must be in (0, 1)")
    if args.reg < 0:
        parser.error("--reg must be >= 0")
    return args


# --------------------------------------------------------------------------------------
# One process, every output line timestamped
# --------------------------------------------------------------------------------------


def run_process(command: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run ``command``; time it from spawn to exit and timestamp every output line.

    Parameters
    ----------
    command : list of str
    env : dict
        The child's environment.
    timeout : float
        Seconds before the child's process group is killed.

    Returns
    -------
    dict
        ``wall`` (spawn -> exit), ``closed`` (spawn -> both pipes closed: the JVM, which
        shares them, is gone too), ``returncode``, ``lines`` as ``[seconds since spawn,
        "out" | "err", text]``, ``spawn_perf`` and ``spawn_epoch`` (the spawn on the
        ``perf_counter`` and wall clocks), ``timed_out``.
    """
    lines: list[list] = []
    lock = threading.Lock()
    spawn_epoch = time.time()
    start = time.perf_counter()
    # A session of its own, so that a timeout can end the child and its JVM together.
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO_ROOT,
        start_new_session=True,
    )

    def pump(stream, name: str) -> None:
        # Binary readline returns as soon as a whole line has arrived (no read-ahead wait).
        for raw in iter(stream.readline, b""):
            now = time.perf_counter()
            with lock:
                lines.append([now - start, name, raw.decode(errors="replace").rstrip("\r\n")])
        stream.close()

    threads = [
        threading.Thread(target=pump, args=(process.stdout, "out"), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, "err"), daemon=True),
    ]
    for thread in threads:
        thread.start()
    timed_out = False
    try:
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        returncode = process.wait()
    except BaseException:
        # Ctrl-C reaches only this process (the child has a session of its own): end the
        # child and its JVM rather than leave them running.
        os.killpg(process.pid, signal.SIGKILL)
        raise
    exited = time.perf_counter()
    for thread in threads:
        thread.join(timeout=60.0)
    closed = time.perf_counter()
    lines.sort(key=lambda line: line[0])
    return {
        "wall": exited - start,
        "closed": closed - start,
        "returncode": returncode,
        "timed_out": timed_out,
        "lines": lines,
        "spawn_perf": start,
        "spawn_epoch": spawn_epoch,
    }


def child_environment() -> dict[str, str]:
    """The children's environment: this one, the workers' Python pinned to this one, and
    unbuffered stdout so that printed lines arrive (and are timestamped) when printed, as on
    a terminal."""
    env = dict(os.environ)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --------------------------------------------------------------------------------------
# The two systems
# --------------------------------------------------------------------------------------


def walsspark_command(args: argparse.Namespace, data: Path, output: Path) -> list[str]:
    """``walsspark train`` as a user runs it, with MLlib's explicit objective."""
    return [
        args.walsspark,
        "train",
        "--input",
        str(data),
        "--user-col",
        args.user_col,
        "--item-col",
        args.item_col,
        "--rating-col",
        args.rating_col,
        "--rank",
        str(args.rank),
        "--sweeps",
        str(args.sweeps),
        "--holdout-fraction",
        str(args.holdout),
        "--regularization",
        str(args.reg),
        "--preset",
        "mllib-explicit",
        "--seed",
        str(args.seed),
        "--output",
        str(output),
        "--master",
        args.master,
    ]


def mllib_command(args: argparse.Namespace, data: Path, output: Path) -> list[str]:
    """The MLlib script, run by this Python."""
    return [
        sys.executable,
        str(MLLIB_JOB),
        "--data",
        str(data),
        "--output",
        str(output),
        "--user-col",
        args.user_col,
        "--item-col",
        args.item_col,
        "--rating-col",
        args.rating_col,
        "--rank",
        str(args.rank),
        "--max-iter",
        str(args.sweeps),
        "--reg",
        str(args.reg),
        "--holdout",
        str(args.holdout),
        "--seed",
        str(args.seed),
        "--master",
        args.master,
        # The same driver memory as walsspark's session (session.new_session_defaults).
        "--driver-memory",
        os.environ.get("WALSSPARK_DRIVER_MEMORY", "4g"),
    ]


def event_log_settings(directory: Path) -> list[str]:
    """``--conf`` options that make Spark write its event log into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"file://{directory}",
        # One plain JSON-lines file (Spark 4 would write rolling zstd files by default).
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
    }
    return [part for key, value in settings.items() for part in ("--conf", f"{key}={value}")]


def walsspark_phases(lines: list[list], wall: float) -> dict:
    """Phase times of one walsspark run from its timestamped log lines.

    Parameters
    ----------
    lines : list
        ``[seconds since spawn, stream, text]`` in arrival order.
    wall : float
        Spawn -> exit.

    Returns
    -------
    dict
        ``phases`` (seconds; NaN where a marking line is missing, see the module
        docstring), ``marks`` (seconds since spawn of each marking line), ``sweeps`` (per
        sweep: reported seconds and the interval since the previous line), ``rmse``.
    """
    nan = math.nan
    jvm = session = laid_out = written = None
    layout_seconds = nan
    sweeps: list[dict] = []
    rmse = nan
    for at, _stream, text in lines:
        if jvm is None and session is None and JVM_LINE.search(text):
            jvm = at
        elif session is None and SESSION_LINE.search(text):
            session = at
        elif (match := LAID_OUT_LINE.search(text)) is not None:
            laid_out, layout_seconds = at, float(match.group(2))
        elif (match := SWEEP_LINE.search(text)) is not None:
            sweeps.append({"sweep": int(match.group(1)), "at": at, "reported": float(match[4])})
        elif WRITTEN_LINE.search(text):
            written = at
        elif (match := RMSE_LINE.match(text)) is not None and match.group(1) != "n/a":
            rmse = float(match.group(1))
    previous = laid_out
    for sweep in sweeps:
        sweep["interval"] = sweep["at"] - previous if previous is not None else nan
        previous = sweep["at"]

    def span(a, b) -> float:
        return b - a if a is not None and b is not None else nan

    fit_start = laid_out - layout_seconds if laid_out is not None else None
    last_sweep = sweeps[-1]["at"] if sweeps else None
    compute = sum(s["reported"] for s in sweeps) if sweeps else nan
    phases = {
        "python": span(0.0, jvm),
        "jvm+session": span(jvm, session),
        "prepare": span(session, fit_start),
        "layout": layout_seconds,
        "sweep compute": compute,
        "between sweeps": span(laid_out, last_sweep) - compute,
        "finish": span(last_sweep, written),
        "exit": span(written, wall),
        "startup": span(0.0, session),
        "sweeps": span(laid_out, last_sweep),
    }
    marks = {
        "jvm_first_line": jvm,
        "session_line": session,
        "fit_start": fit_start,
        "laid_out_line": laid_out,
        "last_sweep_line": last_sweep,
        "model_written_line": written,
    }
    return {"phases": phases, "marks": marks, "sweeps": sweeps, "rmse": rmse}


def mllib_phases(lines: list[list], wall: float, spawn_perf: float) -> dict:
    """Phase times of one MLlib run from the JSON on its last stdout line.

    ``python`` and ``exit`` place the script's own ``perf_counter`` readings on this
    process's timeline; NaN if they fall outside the run (a clock not shared by processes).
    """
    nan = math.nan
    report = None
    for _at, stream, text in reversed(lines):
        if stream == "out" and text.startswith("{"):
            try:
                report = json.loads(text)
            except json.JSONDecodeError:
                continue
            break
    if report is None:
        return {"phases": dict.fromkeys(MLLIB_PHASES, nan) | {"startup": nan}, "rmse": nan}
    began = report["start"] - spawn_perf
    ended = report["end"] - spawn_perf
    shared_clock = 0.0 <= began <= ended <= wall
    phases = {"python": began if shared_clock else nan}
    phases.update({name: report["phases"].get(name, nan) for name in MLLIB_PHASES[1:-1]})
    phases["exit"] = wall - ended if shared_clock else nan
    phases["startup"] = phases["python"] + phases["imports"] + phases["session"]
    return {"phases": phases, "rmse": report["rmse"], "marks": {"script_start": began}}


def directory_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (what the saved model occupies)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def walsspark_metadata(model: Path) -> dict | None:
    """The saved model's metadata (params, data sizes, history), or None if unreadable."""
    for part in sorted((model / "metadata").glob("part-*")):
        try:
            return json.loads(part.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
    return None


def objective_problem(run: dict) -> str | None:
    """Why a walsspark run did not train MLlib's explicit objective, or None if it did
    (read back from the saved model, so a changed preset cannot skew the comparison)."""
    params = run.get("model_params")
    if params is None:
        return "no readable metadata in the saved model"
    expected = {"unobserved_weight": 0.0, "reg_exponent": 1.0, "implicit_prefs": False}
    wrong = {k: params.get(k) for k, v in expected.items() if params.get(k) != v}
    return f"not MLlib's explicit objective: {wrong}" if wrong else None


def run_once(system: str, args, data: Path, monitor: ForeignCpuMonitor, env) -> dict:
    """One fresh process of ``system``, in a temporary directory of its own."""
    workdir = Path(tempfile.mkdtemp(prefix=f"walsspark-wall-{system}-"))
    output = workdir / ("model" if system == "walsspark" else "mllib-model")
    if system == "walsspark":
        command = walsspark_command(args, data, output)
    else:
        command = mllib_command(args, data, output)
    if args.spark_jobs:
        # The CLI and the script both take spark-submit's --conf.
        command = command + event_log_settings(workdir / "events")
    foreign = monitor.seconds()
    outcome = run_process(command, env, args.timeout)
    outcome["foreign_cpu_seconds"] = monitor.seconds() - foreign
    outcome["seconds"] = outcome["wall"]  # the key contention_warning reads
    outcome["command"] = command
    outcome["workdir"] = str(workdir)
    if system == "walsspark":
        outcome.update(walsspark_phases(outcome["lines"], outcome["wall"]))
        metadata = walsspark_metadata(output)
        if metadata is not None:
            outcome["model_params"] = metadata.get("params")
            outcome["model_data"] = metadata.get("data")
            outcome["fit_seconds_reported"] = metadata.get("fit_seconds")
    else:
        outcome.update(mllib_phases(outcome["lines"], outcome["wall"], outcome["spawn_perf"]))
    outcome["model_bytes"] = directory_bytes(output) if output.exists() else 0
    if args.spark_jobs:
        outcome["spark_jobs"] = spark_jobs(workdir / "events", outcome)
    return outcome


# --------------------------------------------------------------------------------------
# Spark jobs from the event log (--spark-jobs)
# --------------------------------------------------------------------------------------


def event_lines(directory: Path):
    """The events of the event log files under ``directory``, parsed."""
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.name.startswith((".", "appstatus")):
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            for text in handle:
                try:
                    yield json.loads(text)
                except ValueError:
                    continue


def spark_jobs(directory: Path, run: dict) -> list[dict]:
    """What Spark ran during a run, from its event log, in order of start.

    One entry per SQL query (a DataFrame action: its jobs, including those adaptive query
    execution submits, and its driver-side planning; labelled with the action's call site)
    and per job outside any query (MLlib's RDD jobs): ``start`` (seconds since spawn),
    ``seconds`` (start to end), ``jobs``, ``task_seconds`` (summed executor run time of its
    tasks), ``label`` and ``phase`` (the phase it started in).
    """
    spawn = run["spawn_epoch"]
    queries: dict[int, dict] = {}  # root execution id -> entry
    root_of: dict[int, int] = {}  # execution id -> root execution id
    loose: dict[int, dict] = {}  # job id -> entry, for jobs outside a query
    owner: dict[int, dict] = {}  # stage id -> the entry its job belongs to
    for event in event_lines(directory):
        kind = event.get("Event", "")
        if kind.endswith("SQLExecutionStart"):
            execution, root = event["executionId"], event.get("rootExecutionId", -1)
            root = execution if root in (-1, None) else root
            root_of[execution] = root
            if root == execution:
                queries[execution] = {
                    "start": event["time"] / 1000.0 - spawn,
                    "label": event.get("description") or "?",
                    "jobs": 0,
                    "task_seconds": 0.0,
                }
        elif kind.endswith("SQLExecutionEnd"):
            entry = queries.get(event["executionId"])
            if entry is not None:
                entry["seconds"] = event["time"] / 1000.0 - spawn - entry["start"]
        elif kind == "SparkListenerJobStart":
            properties = event.get("Properties") or {}
            execution = properties.get("spark.sql.execution.id")
            entry = None
            if execution is not None:
                entry = queries.get(root_of.get(int(execution), int(execution)))
            if entry is None:
                stages = event.get("Stage Infos") or [{}]
                entry = {
                    "start": event["Submission Time"] / 1000.0 - spawn,
                    "label": properties.get("callSite.short") or stages[-1].get("Stage Name"),
                    "jobs": 0,
                    "task_seconds": 0.0,
                }
                loose[event["Job ID"]] = entry
            entry["jobs"] += 1
            for stage in event.get("Stage IDs") or []:
                owner[stage] = entry
        elif kind == "SparkListenerJobEnd" and event["Job ID"] in loose:
            entry = loose[event["Job ID"]]
            entry["seconds"] = event["Completion Time"] / 1000.0 - spawn - entry["start"]
        elif kind == "SparkListenerTaskEnd" and event.get("Stage ID") in owner:
            metrics = event.get("Task Metrics") or {}
            owner[event["Stage ID"]]["task_seconds"] += metrics.get("Executor Run Time", 0) / 1e3
    entries = sorted([*queries.values(), *loose.values()], key=lambda entry: entry["start"])
    bounds = phase_bounds(run)
    for entry in entries:
        entry.setdefault("seconds", math.nan)
        entry["phase"] = next((name for name, end in bounds if entry["start"] < end), "exit")
    return entries


def merged_jobs(entries: list[dict]) -> list[dict]:
    """Consecutive entries with the same phase and label as one row (the sweeps' repeats)."""
    rows: list[dict] = []
    for entry in entries:
        last = rows[-1] if rows else None
        if last is not None and (last["phase"], last["label"]) == (entry["phase"], entry["label"]):
            last["count"] += 1
            last["seconds"] += entry["seconds"]
            last["jobs"] += entry["jobs"]
            last["task_seconds"] += entry["task_seconds"]
        else:
            rows.append({**entry, "count": 1})
    return rows


def phase_bounds(run: dict) -> list[tuple[str, float]]:
    """(phase, end in seconds since spawn) in order, from a run's marks."""
    marks = run.get("marks", {})
    if "session_line" in marks:  # walsspark
        order = [
            ("startup", marks["session_line"]),
            ("prepare", marks["fit_start"]),
            ("layout", marks["laid_out_line"]),
            ("sweeps", marks["last_sweep_line"]),
            ("finish", marks["model_written_line"]),
        ]
    else:
        began = marks.get("script_start", 0.0)
        order, at = [], began
        for name in MLLIB_PHASES[1:-1]:
            at += run["phases"].get(name, 0.0)
            order.append((name, at))
    return [(name, end if end is not None else math.inf) for name, end in order]


# --------------------------------------------------------------------------------------
# Reference start-up costs
# --------------------------------------------------------------------------------------


def java_executable() -> str | None:
    """The Java that Spark (and walsspark's check) would start."""
    home = os.environ.get("JAVA_HOME")
    return os.path.join(home, "bin", "java") if home else shutil.which("java")


def probe_startup(env: dict[str, str], repeats: int = 3) -> dict:
    """Median seconds of a few fresh processes that every walsspark run starts with."""
    probes = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import walsspark.cli": [sys.executable, "-c", "import walsspark.cli"],
        "import pyspark.sql": [sys.executable, "-c", "import pyspark.sql"],
    }
    java = java_executable()
    if java:
        probes["java -version"] = [java, "-version"]
    out: dict[str, float] = {}
    for name, command in probes.items():
        times = [run_process(command, env, 120.0)["wall"] for _ in range(repeats)]
        out[name] = _median(times)
    return out


def java_version(env: dict[str, str]) -> str:
    """The first line of ``java -version`` (for the report)."""
    java = java_executable()
    if not java:
        return "unknown"
    lines = run_process([java, "-version"], env, 120.0)["lines"]
    return lines[0][2] if lines else "unknown"


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Medians of the wall times and of every phase, and the walsspark/MLlib ratios."""
    out: dict = {}
    for system, system_runs in runs.items():
        walls = [r["wall"] for r in system_runs]
        names = list(system_runs[0]["phases"])
        out[system] = {
            "wall": walls,
            "wall_median": _median(walls),
            "wall_first": walls[0],
            "wall_median_excluding_first": _median(walls[1:]),
            "rmse": [r["rmse"] for r in system_runs],
            "phases_median": {
                name: _median([r["phases"][name] for r in system_runs]) for name in names
            },
        }
    w, m = out["walsspark"], out["mllib"]
    out["ratio"] = {
        "per_run": [a / b for a, b in zip(w["wall"], m["wall"], strict=True)],
        "first": w["wall_first"] / m["wall_first"],
        "median": w["wall_median"] / m["wall_median"],
        "median_excluding_first": (
            w["wall_median_excluding_first"] / m["wall_median_excluding_first"]
            if len(w["wall"]) > 1
            else math.nan
        ),
    }
    return out


def _cell(value: float | None, width: int = 9, digits: int = 2) -> str:
    """A right-aligned number, ``n/a`` for a missing one."""
    if value is None or math.isnan(value):
        return f"{'n/a':>{width}}"
    return f"{value:>{width}.{digits}f}"


def phase_lines(system: str, summary: dict) -> list[str]:
    """The median phase table of one system (groups above their parts)."""
    phases = summary[system]["phases_median"]
    wall = summary[system]["wall_median"]
    order = WALS_PHASES if system == "walsspark" else MLLIB_PHASES
    groups = {parts[0]: (name, parts) for name, parts in GROUPS[system]}
    lines = []
    for name in order:
        if name in groups:
            group, parts = groups[name]
            lines.append(
                f"  {group:<24}{_cell(phases[group])}{_cell(100 * phases[group] / wall, 7, 1)}%"
            )
        indent = "    " if any(name in parts for _, parts in GROUPS[system]) else "  "
        label = f"{indent}{name}"
        lines.append(f"{label:<26}{_cell(phases[name])}{_cell(100 * phases[name] / wall, 7, 1)}%")
    known = sum(v for k, v in phases.items() if k in order and not math.isnan(v))
    lines.append(f"  {'sum of phase medians':<24}{_cell(known)}   (median wall {wall:.2f} s)")
    return lines


def format_report(result: dict) -> str:
    cfg, env, summary = result["config"], result["environment"], result["summary"]
    runs = result["runs"]
    repeats = cfg["repeats"]
    lines = [
        "Wall time from command to saved model, one fresh process per run",
        f"data     {result['data']}",
        f"params   rank={cfg['rank']} sweeps={cfg['sweeps']} lambda={cfg['reg']} "
        f"holdout={cfg['holdout']} seed={cfg['seed']} master={cfg['master']}; walsspark "
        "--preset mllib-explicit (w0 = 0, nu = 1), MLlib ALS explicit (10 x 10 blocks)",
        f"env      {env['cpu_count']} CPUs, pyspark {env['pyspark']}, Python {env['python']}, "
        f"{env['java']}",
        "",
    ]
    heads = [f"run {i + 1}{'*' if i == 0 else ''}" for i in range(repeats)]
    head = f"{'wall seconds':<24}" + "".join(f"{h:>9}" for h in heads) + f"{'median':>9}"
    lines += [head, "-" * len(head)]
    for system in SYSTEMS:
        s = summary[system]
        lines.append(
            f"{LABELS[system]:<24}" + "".join(_cell(t) for t in s["wall"]) + _cell(s["wall_median"])
        )
    ratio = summary["ratio"]
    lines.append(
        f"{'ratio walsspark/MLlib':<24}"
        + "".join(_cell(r) for r in ratio["per_run"])
        + _cell(ratio["median"])
    )
    for system in SYSTEMS:
        foreign = [r["foreign_cpu_seconds"] for r in runs[system]]
        if not all(math.isnan(f) for f in foreign):
            lines.append(
                f"{'  other procs CPU s':<24}"
                + "".join(_cell(f, digits=1) for f in foreign)
                + f"   ({LABELS[system]})"
            )
    lines += [
        f"* run 1: the first process of each system. Ratio of run 1: {ratio['first']:.2f}; "
        f"of the medians: {ratio['median']:.2f}"
        + (
            f"; of the medians without run 1: {ratio['median_excluding_first']:.2f}"
            if not math.isnan(ratio["median_excluding_first"])
            else ""
        ),
        "  run order: " + ", ".join(LABELS[s].split()[0] for s in result["run_order"]),
        "",
        f"{'holdout RMSE':<24}" + "".join(f"{h:>9}" for h in heads),
    ]
    for system in SYSTEMS:
        lines.append(
            f"{LABELS[system]:<24}" + "".join(_cell(v, digits=4) for v in summary[system]["rmse"])
        )
    lines.append(
        "  (different 10 % samples: walsspark's hash split, MLlib's randomSplit; cold pairs "
        "dropped by both)"
    )
    sizes = ", ".join(
        f"{LABELS[system]} {runs[system][-1]['model_bytes'] / 1e6:.1f} MB" for system in SYSTEMS
    )
    lines.append(f"saved model: {sizes}")
    for system in SYSTEMS:
        lines += ["", f"{LABELS[system]}: median seconds per phase (share of the median wall)"]
        lines += phase_lines(system, summary)
    last = runs["walsspark"][-1]
    if last.get("sweeps"):
        reported = " ".join(f"{s['reported']:.2f}" for s in last["sweeps"])
        intervals = " ".join(f"{s['interval']:.2f}" for s in last["sweeps"])
        lines += [
            "",
            "walsspark last run, per sweep: reported s: " + reported,
            "  interval since the previous line s: " + intervals,
        ]
    probes = result["startup_probes"]
    lines += [
        "",
        "reference start-up costs (median of 3 fresh processes): "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in probes.items()),
    ]
    for system in SYSTEMS:
        entries = runs[system][-1].get("spark_jobs")
        if entries:
            lines += [
                "",
                f"{LABELS[system]}, last run: Spark queries and jobs (consecutive repeats merged)",
                f"  {'start s':>8} {'n':>3} {'wall s':>7} {'task s':>7} {'jobs':>4}  "
                f"{'phase':<9} query (action's call site) or job",
            ]
            lines += [
                f"  {r['start']:8.2f} {r['count']:>3} {r['seconds']:7.2f} {r['task_seconds']:7.2f} "
                f"{r['jobs']:>4}  {r['phase']:<9} {r['label']}"
                for r in merged_jobs(entries)
            ]
    lines += contention_warning(
        {LABELS[s]: runs[s] for s in SYSTEMS},
        min_seconds=1.0,
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def failure(system: str, run: dict) -> str:
    """The message for a run that failed: why, where its files are, its last lines."""
    tail = "\n".join(f"    {text}" for _, _, text in run["lines"][-20:])
    why = "timed out" if run["timed_out"] else f"exit status {run['returncode']}"
    return f"bench_wall: {LABELS[system]} failed ({why}); kept {run['workdir']}\n{tail}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = resolve_data(args.data)
    if data is None:
        print(
            f"bench_wall: ratings not found: {args.data} (looked in {Path.cwd()} and "
            f"{REPO_ROOT}). Expected ML-1M at {DEFAULT_DATA} or ML-100K at {ALTERNATIVE_DATA} "
            "relative to the repository root; pass --data PATH.",
            file=sys.stderr,
        )
        return 2
    if not os.access(args.walsspark, os.X_OK):
        print(f"bench_wall: no walsspark console script at {args.walsspark}", file=sys.stderr)
        return 2
    env = child_environment()
    environment = {
        "python": platform.python_version(),
        "pyspark": importlib.metadata.version("pyspark"),
        "java": java_version(env),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    probes = probe_startup(env)

    monitor = ForeignCpuMonitor().start()
    runs: dict[str, list[dict]] = {system: [] for system in SYSTEMS}
    run_order: list[str] = []
    try:
        for repeat in range(args.repeats):
            # walsspark, MLlib, MLlib, walsspark, ...: neither always goes first.
            order = SYSTEMS if repeat % 2 == 0 else SYSTEMS[::-1]
            for system in order:
                run = run_once(system, args, data, monitor, env)
                if run["returncode"] != 0 or run["timed_out"]:
                    print(failure(system, run), file=sys.stderr)
                    return 1
                problem = objective_problem(run) if system == "walsspark" else None
                if problem is not None:
                    print(f"bench_wall: walsspark run: {problem}", file=sys.stderr)
                    return 1
                runs[system].append(run)
                run_order.append(system)
                if not args.keep:
                    shutil.rmtree(run["workdir"], ignore_errors=True)
                print(
                    f"  run {repeat + 1}/{args.repeats} {LABELS[system]:<17} "
                    f"{run['wall']:7.2f} s  holdout RMSE {run['rmse']:.4f}  "
                    f"(other processes {run['foreign_cpu_seconds']:.1f} CPU s)",
                    file=sys.stderr,
                    flush=True,
                )
                # Let the OS take back the JVM's memory before the next process starts.
                time.sleep(1.0)
    finally:
        monitor.stop()

    result = {
        "config": {
            "data": args.data,
            "rank": args.rank,
            "sweeps": args.sweeps,
            "reg": args.reg,
            "holdout": args.holdout,
            "seed": args.seed,
            "repeats": args.repeats,
            "master": args.master,
            "spark_jobs": args.spark_jobs,
        },
        "environment": environment,
        "data": str(data),
        "startup_probes": probes,
        "run_order": run_order,
        "runs": runs,
        "summary": summarize(runs),
    }
    print(format_report(result))
    if args.keep:
        print("\nkept: " + " ".join(r["workdir"] for s in SYSTEMS for r in runs[s]))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
