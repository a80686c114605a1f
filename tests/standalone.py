"""A Spark standalone cluster on 127.0.0.1 for the tests: a master and workers started with
pyspark's own ``spark-class``, each worker with its own work directory, stopped by PID
(with everything they started) however the test ends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark


@dataclass
class StandaloneCluster:
    master_url: str
    web_url: str
    work_dirs: list[Path]
    logs: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive_workers(web_url: str) -> int:
    try:
        with urllib.request.urlopen(f"{web_url}/json/", timeout=2) as response:
            state = json.load(response)
    except (OSError, ValueError):
        return 0
    return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")


@contextlib.contextmanager
def standalone_cluster(
    root: Path, workers: int = 2, cores: int = 1, memory: str = "2g"
) -> Iterator[StandaloneCluster]:
    """Start a master and ``workers`` workers; yield once all workers are registered."""
    spark_class = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-class")
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1")
    env.pop("PYSPARK_GATEWAY_PORT", None)
    env.pop("SPARK_REMOTE", None)
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port, web_port = free_port(), free_port()
    master_url, web_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}"
    processes: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "wb") as log:
            processes.append(
                subprocess.Popen(
                    [spark_class, *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # its own process group: stopped as a whole
                )
            )

    work_dirs = [root / f"worker-{i}" for i in range(workers)]
    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
              "--port", str(port), "--webui-port", str(web_port))  # fmt: skip
        for i, work_dir in enumerate(work_dirs):
            work_dir.mkdir(parents=True, exist_ok=True)
            start(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                  "--cores", str(cores), "--memory", memory, "--work-dir", str(work_dir),
                  "--webui-port", str(free_port()), master_url)  # fmt: skip
        deadline = time.monotonic() + 120
        while _alive_workers(web_url) < workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"standalone cluster did not come up; see {logs}")
            time.sleep(0.5)
        yield StandaloneCluster(master_url, web_url, work_dirs, logs)
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
