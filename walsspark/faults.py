"""Test-only fault injection: make chosen task attempts fail, or every solve task slow.
Off unless a variable is set.

``WALSSPARK_FAULTS`` lists targets, comma-separated, ``<side>:<block>``: ``side`` is
``user`` or ``item`` (the half-sweep solving that side) and ``block`` a block number or
``*``. The first attempt (``attemptNumber() == 0``) of every matching solve task raises
:class:`InjectedFaultError`; Spark then retries the task (``spark.task.maxFailures`` above 1,
e.g. ``local[2,4]``), and the retry computes the same bytes: the Gramians and losses are
added in block order, the initial factors are a function of the id. With
``WALSSPARK_FAULT_LOG`` set to a directory, every injected failure leaves a file there, so
a test can count them. ``WALSSPARK_TASK_DELAY`` (seconds) makes every solve task sleep
that long first, so that a test can kill an executor while a half-sweep runs.

The variables must be in the executors' environment (on ``local[*]`` the driver's, set
before the session starts). Used by ``tests/test_faults.py``; documented in README
"Failures and recovery".
"""

from __future__ import annotations

import os
import time
import uuid

FAULTS_VARIABLE = "WALSSPARK_FAULTS"
FAULT_LOG_VARIABLE = "WALSSPARK_FAULT_LOG"
DELAY_VARIABLE = "WALSSPARK_TASK_DELAY"


class InjectedFaultError(RuntimeError):
    """The failure a test asked for (never raised unless ``WALSSPARK_FAULTS`` is set)."""


def _targets(value: str) -> set[tuple[str, str]]:
    targets = set()
    for item in value.split(","):
        side, _, block = item.strip().partition(":")
        if side:
            targets.add((side, block or "*"))
    return targets


def maybe_fail(side: str, block: int) -> None:
    """Raise :class:`InjectedFaultError` in the first attempt of a task solving ``block`` of
    ``side`` when ``WALSSPARK_FAULTS`` names it; sleep ``WALSSPARK_TASK_DELAY`` seconds first
    when that is set; do nothing otherwise (the normal case)."""
    delay = os.environ.get(DELAY_VARIABLE)
    if delay:
        time.sleep(float(delay))
    value = os.environ.get(FAULTS_VARIABLE)
    if not value:
        return
    targets = _targets(value)
    if (side, str(block)) not in targets and (side, "*") not in targets:
        return
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None or context.attemptNumber() != 0:
        return
    log = os.environ.get(FAULT_LOG_VARIABLE)
    if log:
        name = f"{side}-{block}-stage{context.stageId()}-{uuid.uuid4().hex[:8]}"
        with open(os.path.join(log, name), "w", encoding="utf-8"):
            pass
    raise InjectedFaultError(f"injected fault: {side} block {block}, attempt 0")
