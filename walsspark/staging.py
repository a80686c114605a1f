"""Staging siblings of driver-local outputs: written in full, then renamed into place.

An output ``<target>`` on the driver's own disk is written to ``<target>.tmp-`` and 8 hex
digits (:meth:`walsspark.storage.Storage.write_output`), and published by renames only,
so the target is at every moment either absent, the old output or the new one, never a
part of one. A run killed while writing leaves its staging sibling behind: never taken for
the output (it is not the target's name, and a model in it lacks ``metadata/`` until its
tables are complete), and removed by the next write of the same target.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

# Staging directories of driver-local writes under way in this process (and of those a
# Ctrl-C interrupted, until walsspark.interrupts removes them once the JVM has ended).
UNFINISHED: set[str] = set()
# What follows the target's name in a staging sibling's.
_STAGING_SUFFIX = re.compile(r"\.tmp-[0-9a-f]{8}")


def staging_name(target: str) -> str:
    """A new staging sibling's path for ``target``."""
    return f"{target}.tmp-{uuid.uuid4().hex[:8]}"


def publish(staging: str, target: str) -> None:
    """Put the complete ``staging`` directory in place of ``target`` (absent, a file or an
    old output directory).

    An old directory is renamed aside first and deleted last, rather than deleted in
    place: the target is without an output for the time of one rename, not for that of a
    recursive delete, and a run killed in between leaves a staging name, which the next
    write removes.
    """
    if os.path.isdir(target) and not os.path.islink(target):
        old = staging_name(target)
        os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
        return
    if os.path.lexists(target):
        os.remove(target)
    os.rename(staging, target)


@contextmanager
def staged(target: str) -> Iterator[str]:
    """A new staging sibling of ``target`` to write into (not created: a Spark writer
    creates it), published in place of ``target`` when the block completes.

    Stale siblings of killed runs are removed first. On failure the staging directory is
    removed, except after a Ctrl-C that :mod:`walsspark.interrupts` handles: Spark's tasks
    may go on writing there until it ends the JVM, and it removes the directory after that.
    """
    from walsspark import interrupts

    remove_stale_staging(target)
    staging = staging_name(target)
    UNFINISHED.add(staging)
    try:
        yield staging
        publish(staging, target)
    except BaseException as error:
        if not (isinstance(error, KeyboardInterrupt) and interrupts.installed()):
            shutil.rmtree(staging, ignore_errors=True)
            UNFINISHED.discard(staging)
        raise
    UNFINISHED.discard(staging)


def remove_unfinished_staging() -> None:
    """Remove the staging directories of this process's unfinished writes."""
    for staging in list(UNFINISHED):
        shutil.rmtree(staging, ignore_errors=True)
        UNFINISHED.discard(staging)


def remove_stale_staging(target: str) -> list[str]:
    """Remove the staging siblings of ``target`` that killed runs left: directories (not
    symbolic links) named exactly ``<target>.tmp-`` and 8 lower-case hex digits, not
    written by this process. Returns their paths.

    Another process writing the same target at the same moment would lose its staging
    directory and fail: two runs must not write one output at once anyway (the later
    rename would replace the earlier output).
    """
    parent, base = os.path.split(os.path.abspath(target))
    try:
        siblings = os.listdir(parent)
    except OSError:
        return []
    removed = []
    for name in sorted(siblings):
        path = os.path.join(parent, name)
        if not name.startswith(base) or not _STAGING_SUFFIX.fullmatch(name[len(base) :]):
            continue
        if os.path.isdir(path) and not os.path.islink(path) and path not in UNFINISHED:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
