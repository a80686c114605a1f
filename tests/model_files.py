"""Reading and editing model directories in tests, as a user with a file browser would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

METADATA = "metadata"


def metadata_part(model: str | Path) -> Path:
    """The one part file of a model's ``metadata/`` directory."""
    (part,) = sorted((Path(model) / METADATA).glob("part-*"))
    return part


def read_metadata(model: str | Path) -> dict:
    return json.loads(metadata_part(model).read_text())


def write_metadata(model: str | Path, metadata: dict | str) -> None:
    """Replace the metadata (a dict, or raw text for broken-file cases)."""
    directory = Path(model) / METADATA
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    text = metadata if isinstance(metadata, str) else json.dumps(metadata)
    (directory / "part-00000.txt").write_text(text)
