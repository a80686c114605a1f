"""Sweep checkpoints: a run's factors every N-th sweep, on a file system that outlives the
executors and the driver (``walsspark train --checkpoint-dir DIR``).

They serve two restarts, both ending with the factors of an uninterrupted run (initial
factors are a function of seed and id, and every sum is taken in block order, so a sweep
computed again gives the same bytes):

- in the same process, when an executor was lost and with it the local checkpoints since
  the last sweep checkpoint (:func:`lost_local_checkpoint`, handled by
  :func:`walsspark.train.fit`);
- in a new process, ``walsspark train ... --resume`` after the driver was killed.

Layout of ``DIR`` (only these two directories are ever written or replaced there)::

    sweeps-a/, sweeps-b/   two slots, written in turn, so that the newest complete
                           checkpoint is never the one being replaced
        users/             the user half-sweep's output (``SOLVED_SCHEMA`` rows), Parquet
        items/             the item half-sweep's output
        checkpoint/        one JSON line, written last (the slot's completion marker): the
                           sweep, the history before it and the run's fingerprint

A slot is written like every walsspark output (:meth:`walsspark.storage.Storage.write_output`):
staged and renamed on the driver's disk, elsewhere in place with the marker invalidated
first and written last. A slot without a readable marker is ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from walsspark.errors import InputError
from walsspark.paths import join
from walsspark.storage import Storage

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger("walsspark")

FORMAT = "walsspark-sweep-checkpoint"
FORMAT_VERSION = 1
SLOTS = ("sweeps-a", "sweeps-b")
MARKER = "checkpoint"
# Parameters a resumed run may change: they decide how far it runs and how often it
# checkpoints, not the factors of any one sweep.
RESUMABLE_CHANGES = frozenset({"sweeps", "checkpoint_interval", "tol"})
# How Spark reports a local checkpoint lost with its executor
# (LocalCheckpointRDD: CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND, "Checkpoint block rdd_7_1 not found!").
_LOST_CHECKPOINT_SIGNS = ("CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND", "Checkpoint block rdd_")


def lost_local_checkpoint(error: BaseException) -> bool:
    """Whether ``error`` is a job that failed because local checkpoint blocks (a
    half-sweep's output) were lost with their executor: lineage cannot recompute them."""
    text = str(error)
    return any(sign in text for sign in _LOST_CHECKPOINT_SIGNS)


def data_digest(ratings: DataFrame) -> tuple[int, str]:
    """The number of rows and an order-independent digest of their content (the XOR of a
    64-bit hash of every row), in one pass: what tells a checkpoint's data from other data."""
    from pyspark.sql import functions as F

    row = ratings.agg(
        F.count(F.lit(1)).alias("n"), F.bit_xor(F.xxhash64(*ratings.columns)).alias("digest")
    ).first()
    return int(row["n"]), f"{(row['digest'] or 0) & 0xFFFFFFFFFFFFFFFF:016x}"


def fingerprint(params: dict, data: dict, blocks: tuple[int, int]) -> dict:
    """What a checkpoint must match to be resumed: the parameters that shape the
    factors, the data (:func:`data_digest`, holdout size) and the block counts (the
    order of every sum)."""
    shaping = {
        k: v
        for k, v in sorted(params.items())
        if k not in RESUMABLE_CHANGES and k not in ("num_user_blocks", "num_item_blocks")
    }
    return {"params": shaping, "data": data, "blocks": list(blocks)}


def describe_difference(found: dict, wanted: dict) -> str:
    """The first difference between two fingerprints, for a one-line refusal."""
    for part in ("data", "params"):
        for key in sorted(set(found.get(part, {})) | set(wanted.get(part, {}))):
            old, new = found.get(part, {}).get(key), wanted.get(part, {}).get(key)
            if old != new:
                what = "data" if part == "data" else "parameters"
                return f"other {what} ({key} {old!r} there, {new!r} here)"
    if found.get("blocks") != wanted.get("blocks"):
        return (
            f"other block counts ({found.get('blocks')} there, {wanted.get('blocks')} here; "
            "pass --num-user-blocks/--num-item-blocks as that run had them)"
        )
    return "another run"


@dataclass
class Checkpoint:
    """A complete checkpoint found in a directory."""

    slot: str
    sweep: int
    history: list[dict]
    fingerprint: dict
    seconds: float = 0.0


@dataclass
class SweepCheckpoints:
    """The sweep checkpoints of one run in ``path``.

    Attributes
    ----------
    storage : Storage
        With a session.
    path : str
        The checkpoint directory (any file system Spark reaches).
    resume : bool
        Continue from the newest checkpoint there (``--resume``); without it a directory
        holding one is refused, unless ``overwrite``.
    overwrite : bool
        Replace a checkpoint of an earlier run without resuming from it.
    """

    storage: Storage
    path: str
    resume: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        # The slot holding the checkpoint this run may still need: the next write goes
        # to the other one.
        self._kept_slot: str | None = None

    def found(self) -> list[Checkpoint]:
        """The complete checkpoints in the directory (at most one per slot)."""
        return [c for c in (self._read_marker(slot) for slot in SLOTS) if c is not None]

    def _read_marker(self, slot: str) -> Checkpoint | None:
        try:
            text = self.storage.read_text(join(self.path, slot, MARKER))
        except (FileNotFoundError, LookupError):
            return None
        except Exception as error:  # noqa: BLE001 - an unreadable marker: not complete
            log.warning("ignoring the checkpoint in %s: %s", join(self.path, slot), error)
            return None
        try:
            marker = json.loads(text)
        except ValueError:
            return None
        if not isinstance(marker, dict) or marker.get("format") != FORMAT:
            return None
        if marker.get("format_version", 0) > FORMAT_VERSION:
            raise InputError(
                f"the checkpoint in {self.storage.describe(self.path)} has format version "
                f"{marker['format_version']}, newer than this walsspark reads ({FORMAT_VERSION})"
            )
        try:
            return Checkpoint(
                slot,
                int(marker["sweep"]),
                list(marker["history"]),
                dict(marker["fingerprint"]),
                float(marker.get("seconds", 0.0)),
            )
        except (KeyError, TypeError, ValueError):  # a damaged marker: not complete
            log.warning("ignoring the checkpoint in %s: its marker is damaged", slot)
            return None

    def check_unused(self) -> None:
        """Refuse, before any work, a directory holding a checkpoint when this run neither
        resumes from it nor may replace it (a no-op where only a session could tell)."""
        if self.resume or self.overwrite:
            return
        found = self.found()
        if found:
            newest = max(found, key=lambda c: c.sweep)
            raise InputError(
                f"checkpoint directory {self.storage.describe(self.path)} holds a checkpoint "
                f"of sweep {newest.sweep}: pass --resume to continue from it, or --overwrite "
                "to start again"
            )

    def start(self, wanted: dict, sweeps: int) -> Checkpoint | None:
        """The checkpoint to continue from (None: start at sweep 1), refusing one of
        another run.

        Raises
        ------
        InputError
            ``--resume`` and the newest checkpoint is of other data, parameters or block
            counts; or no ``--resume`` and the directory holds a checkpoint (and no
            ``overwrite``).
        """
        found = self.found()
        shown = self.storage.describe(self.path)
        if not found:
            if self.resume:
                log.info("no checkpoint to resume in %s: starting at sweep 1", shown)
            return None
        newest = max(found, key=lambda c: c.sweep)
        if not self.resume:
            self.check_unused()
            log.info("replacing the checkpoint of sweep %d in %s", newest.sweep, shown)
            return None
        # A slot left by an earlier run that was replaced (--overwrite) may be newer
        # than this run's own; only checkpoints of this run count.
        matching = [c for c in found if c.fingerprint == wanted]
        if not matching:
            raise InputError(
                f"cannot resume from the checkpoint in {shown}: it was written for "
                f"{describe_difference(newest.fingerprint, wanted)}"
            )
        # Never a model of more sweeps than asked for (the sweeps may change on resume).
        within = [c for c in matching if c.sweep <= sweeps]
        if not within:
            raise InputError(
                f"cannot resume from the checkpoint in {shown}: it is of sweep "
                f"{min(c.sweep for c in matching)}, past --sweeps {sweeps}"
            )
        matching = within
        resumed = max(matching, key=lambda c: c.sweep)
        self._kept_slot = resumed.slot
        return resumed

    def tables(
        self, checkpoint: Checkpoint, schema: str, checked: bool = False
    ) -> tuple[DataFrame, DataFrame]:
        """A checkpoint's user and item half-sweep outputs, read back from its files.

        ``checked``: refuse, in one line, tables that do not hold one factor block per block
        of the run (a lost part file; or a directory on the driver's disk that the
        executors of a cluster wrote elsewhere).
        """
        spark = self.storage.spark
        tables = tuple(
            spark.read.schema(schema).parquet(self.storage.uri(self.path, checkpoint.slot, side))
            for side in ("users", "items")
        )
        if checked:
            for side, table, expected in zip(
                ("users", "items"), tables, checkpoint.fingerprint["blocks"], strict=True
            ):
                found = table.filter("kind = 0").count()
                if found != expected:
                    raise InputError(
                        f"incomplete checkpoint in {self.storage.describe(self.path)}: "
                        f"{checkpoint.slot}/{side}/ holds {found} of {expected} factor blocks "
                        "(a lost file, or a directory the executors do not share)"
                    )
        return tables  # type: ignore[return-value]

    def write(
        self,
        sweep: int,
        user_blocks: DataFrame,
        item_blocks: DataFrame,
        history: Sequence[dict],
        wanted: dict,
        schema: str,
        seconds: float = 0.0,
    ) -> tuple[DataFrame, DataFrame]:
        """Write a sweep's half-sweep outputs (computing them) into the slot not holding
        the newest checkpoint; return them read back from the files.

        ``history`` is the sweeps before ``sweep``: this sweep's loss is read back from
        the items table when needed; ``seconds`` is its time until the write.
        """
        from walsspark.model import parquet_writer

        slot = SLOTS[1] if self._kept_slot == SLOTS[0] else SLOTS[0]
        marker = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "sweep": sweep,
            "history": list(history),
            "seconds": seconds,
            "fingerprint": wanted,
        }
        self.storage.write_output(
            join(self.path, slot),
            True,
            [
                ("users", parquet_writer(user_blocks)),
                ("items", parquet_writer(item_blocks)),
                (MARKER, self.storage.text_writer(json.dumps(marker))),
            ],
        )
        self._kept_slot = slot
        log.info("checkpoint of sweep %d written to %s", sweep, self.storage.describe(self.path))
        return self.tables(Checkpoint(slot, sweep, list(history), wanted), schema, checked=True)
