"""Errors that the command line turns into one clear line and exit status 2."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

_MAX_CAUSE_CHARS = 300
_JAVA_EXCEPTION_PREFIX = re.compile(r"^(?:[a-z_][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error): ")
T = TypeVar("T")


class InputError(ValueError):
    """Bad user input: a missing file, a bad column, bad rows or a bad option value.

    The message is a single line that names the problem; the CLI prints it as
    ``walsspark: error: <message>`` and exits with status 2 before anything is written.
    """


def first_line(error: BaseException) -> str:
    """First meaningful line of an exception message (Py4J, Connect or Python), shortened."""
    line = ""
    for part in str(error).splitlines():
        part = part.strip().lstrip(":").strip()
        # Py4J (classic Spark) puts "An error occurred while calling o91.parquet." first
        # and the Java exception, class name first, on the next line.
        if not part or part.startswith("An error occurred while calling"):
            continue
        line = _JAVA_EXCEPTION_PREFIX.sub("", part)
        break
    line = line or type(error).__name__
    if len(line) > _MAX_CAUSE_CHARS:
        line = line[: _MAX_CAUSE_CHARS - 3] + "..."
    return line


def guarded_read(path: str, what: str, load: Callable[[], T]) -> T:
    """Run ``load`` and turn Spark's read errors into a one-line :class:`InputError`."""
    try:
        return load()
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 - classic, Py4J and Connect errors alike
        cause = first_line(error)
        if "PATH_NOT_FOUND" in cause or "Path does not exist" in cause:
            raise InputError(f"input not found: {path}") from error
        raise InputError(f"cannot read {path} as {what}: {cause}") from error
