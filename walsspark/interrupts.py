"""Ctrl-C on the command line: one line, exit status 130, nothing left behind.

What printed tracebacks before, and what is done instead:

- pyspark's SIGINT handler calls the JVM (``cancelAllJobs``) from inside the handler, on
  the py4j connection the interrupted call is still reading: a re-entrant call that py4j
  reports with tracebacks. The handler here makes no py4j call: it raises
  :class:`KeyboardInterrupt` once and ignores every further SIGINT (a terminal's second
  Ctrl-C would interrupt the clean-up). py4j still logs the end of the call it was
  waiting on, with tracebacks: once interrupted, log records with a traceback are
  dropped.
- Spark's jobs cannot be stopped quietly: cancelling a write logs each aborted task and
  job with its Java trace, Python workers whose socket closes print flush failures, and a
  JVM that stops its SparkContext on the way out (when this process exits) logs every job
  it ends. So :func:`finish` ends the JVM this process started at once (SIGKILL: it runs
  no shutdown hook), which ends its jobs and its Python workers (they exit when the JVM's
  pipe closes) without a word (pyspark's accumulator server, a thread here, is told not
  to report the connection it loses), then removes the staging directories of unfinished
  driver-local writes (nothing writes into them any more) and prints the one line.

An output written in place elsewhere (HDFS, S3...) is left as after a kill: without its
completion marker (a model's ``metadata/``, which every reader checks; Spark's
``_SUCCESS`` in the table written last of the other outputs). A JVM this process did not
start (under spark-submit, the JVM is the parent) is left alone. Spark's Python workers
are not in the terminal's process group (pyspark's daemon makes its own), so a terminal's
Ctrl-C reaches only the driver and the JVM, which ignores SIGINT.

Only the console script installs this (:func:`install`); a notebook or a test calling
:func:`walsspark.cli.main` keeps Python's and pyspark's handling of Ctrl-C.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

INTERRUPTED_STATUS = 130  # 128 + SIGINT, what shells report for a run ended by Ctrl-C
MESSAGE = "walsspark: interrupted"
_JVM_EXIT_SECONDS = 30.0

_state = {"installed": False, "interrupted": False}


def install() -> None:
    """Handle SIGINT as described in the module (only the main thread can)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _state["installed"] = True
    signal.signal(signal.SIGINT, _on_sigint)


def installed() -> bool:
    """Whether this process handles Ctrl-C as the module says (the console script)."""
    return bool(_state["installed"])


def keep_installed() -> None:
    """Put the handler back after a new SparkContext installed pyspark's over it."""
    if not _state["installed"] or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not _on_sigint:
        signal.signal(signal.SIGINT, _on_sigint)


def _on_sigint(signum, frame) -> None:
    if _state["interrupted"]:
        return
    _state["interrupted"] = True
    # On the handlers, so that records of every logger are filtered (no lock is held
    # here that logging would need: adding a filter only appends to a list).
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_tracebacks)
    raise KeyboardInterrupt


def _drop_tracebacks(record: logging.LogRecord) -> bool:
    """False (drop) for a record with a traceback: once interrupted, py4j logs the end of
    the call it was waiting on (the KeyboardInterrupt, a network error raised while
    handling it, a failed socket shutdown) on the root logger and on its own."""
    return not record.exc_info


def _end_local_jvm() -> None:
    """SIGKILL the Spark JVM that pyspark launched from this process, and reap it."""
    context_module = sys.modules.get("pyspark.core.context") or sys.modules.get("pyspark.context")
    if context_module is None:
        return
    spark_context = context_module.SparkContext
    gateway = getattr(spark_context, "_gateway", None)
    process = getattr(gateway, "proc", None)  # set only when pyspark started the JVM
    if process is None or process.poll() is not None:
        return
    # pyspark's accumulator server (a thread here) reads from the JVM; the end of its
    # connection would print a traceback (socketserver's handle_error).
    server = getattr(spark_context._active_spark_context, "_accumulatorServer", None)
    if server is not None:
        server.handle_error = _ignore_request_error
    process.kill()
    try:
        process.wait(_JVM_EXIT_SECONDS)
    except Exception:  # noqa: BLE001 - the exit goes on; the JVM dies with its pipe
        pass


def _ignore_request_error(request, client_address) -> None:
    pass


def finish() -> int:
    """End an interrupted run (see the module): end the JVM, remove unfinished staging
    directories, print the one line. Returns the exit status, 130."""
    from walsspark.staging import remove_unfinished_staging

    _state["interrupted"] = True  # also for a KeyboardInterrupt raised before install()
    _end_local_jvm()
    remove_unfinished_staging()
    print(MESSAGE, file=sys.stderr, flush=True)
    return INTERRUPTED_STATUS
