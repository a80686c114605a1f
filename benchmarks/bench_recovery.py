"""What checkpoints cost and what they save: ``walsspark train`` in fresh processes.

Each run is one fresh process (``.venv/bin/walsspark train ... --master local[2]``), timed
from spawn to exit, as a user waits for it:

``plain``
    no checkpoint directory (local checkpoints only);
``checkpointed``
    ``--checkpoint-dir`` with ``--checkpoint-interval`` (the overhead of writing the factors
    every N sweeps and after the last, and reading them back);
``killed + resumed``
    the checkpointed command killed (SIGKILL to its process group, the JVM with it) right
    after the log says the checkpoint of sweep ``--kill-after`` was written, then the same
    command with ``--resume``: the time until the kill, the resumed run's time, and their
    sum against ``plain`` (what a killed driver costs with checkpoints, where without them
    it costs the whole time until the kill).

The resumed model's factors are compared with the checkpointed run's (they must be equal,
bitwise). Runs are interleaved (plain, checkpointed, killed + resumed, ``--repeats``
times); medians are printed beside run 1.

Usage::

    python benchmarks/bench_recovery.py                      # ML-1M if ../shared/data has it
    python benchmarks/bench_recovery.py --input synthetic --repeats 1
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
ML_1M = ROOT.parent / "shared" / "data" / "ml-1m" / "ratings.parquet"
WALSSPARK = str(Path(sys.executable).with_name("walsspark"))


def train_command(data: str, output: Path, args: argparse.Namespace) -> list[str]:
    return [
        WALSSPARK, "train", "--input", data, "--output", str(output), "--master", "local[2]",
        "--rank", str(args.rank), "--sweeps", str(args.sweeps), "--seed", "42",
        "--preset", "mllib-explicit", "--regularization", "0.05",
        "--num-user-blocks", "2", "--num-item-blocks", "2",
    ]  # fmt: skip


def environment() -> dict:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return env


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=environment())
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{completed.stderr[-3000:]}")
    return seconds


def killed_after(command: list[str], line: str) -> float:
    """Run ``command``; SIGKILL its process group once ``line`` is logged; the seconds."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
        start_new_session=True,
    )
    try:
        for text in process.stderr:
            if line in text:
                os.killpg(process.pid, signal.SIGKILL)
                break
        else:
            raise SystemExit(f"the run ended before {line!r}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return time.perf_counter() - start


def factors(model: Path) -> dict:
    return {
        name: {r["id"]: r["features"] for r in pq.read_table(str(model / name)).to_pylist()}
        for name in ("user_factors", "item_factors")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=str(ML_1M) if ML_1M.exists() else "synthetic")
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--sweeps", type=int, default=10)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--kill-after", type=int, default=6, help="sweep checkpoint to kill at")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"plain": [], "checkpointed": [], "until kill": []}
    figures.update({"resumed": [], "kill + resume": []})
    with tempfile.TemporaryDirectory(prefix="walsspark-bench-recovery-") as tmp:
        root = Path(tmp)
        for repeat in range(args.repeats):
            run = root / f"run{repeat}"
            plain = train_command(args.input, run / "plain", args)
            figures["plain"].append(timed(plain))
            checkpointing = ["--checkpoint-interval", str(args.interval)]
            full = train_command(args.input, run / "checkpointed", args) + checkpointing
            figures["checkpointed"].append(
                timed(full + ["--checkpoint-dir", str(run / "checkpoints-full")])
            )
            resumable = train_command(args.input, run / "resumed", args) + checkpointing
            resumable += ["--checkpoint-dir", str(run / "checkpoints")]
            until = killed_after(resumable, f"checkpoint of sweep {args.kill_after} written")
            resumed = timed(resumable + ["--resume"])
            figures["until kill"].append(until)
            figures["resumed"].append(resumed)
            figures["kill + resume"].append(until + resumed)
            same = factors(run / "resumed") == factors(run / "checkpointed")
            print(
                f"run {repeat + 1}: plain {figures['plain'][-1]:.1f} s, checkpointed "
                f"{figures['checkpointed'][-1]:.1f} s, killed after {until:.1f} s + resumed "
                f"{resumed:.1f} s; resumed factors bitwise equal: {same}",
                flush=True,
            )
            if not same:
                raise SystemExit("the resumed model differs from the uninterrupted one")
    plain_median = statistics.median(figures["plain"])
    print(
        f"\n{args.input}: rank {args.rank}, {args.sweeps} sweeps, checkpoint every "
        f"{args.interval}, killed after the checkpoint of sweep {args.kill_after}; "
        f"{args.repeats} run(s), fresh process each, local[2]"
    )
    print("| run | first (s) | median (s) | / plain (median) |")
    print("|---|---|---|---|")
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"| {name} | {values[0]:.1f} | {median:.1f} | {median / plain_median:.2f} |")


if __name__ == "__main__":
    main()
