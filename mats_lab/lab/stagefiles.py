"""Where a stage lives on disk: ``<study folder>/stages/<stage key>/`` with ``stage.json`` (its
spec), ``stage.log``, ``progress.jsonl``, ``config.py`` (the dumped config), checkpoints and,
once done, ``result.json``.

Only the standard library is imported here.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["read_result", "stage_dir"]


def stage_dir(folder: Path, key: str) -> Path:
    """The work dir of the stage with ``key`` in a study folder."""
    return folder / "stages" / key


def read_result(work_dir: Path) -> dict | None:
    """The stage's ``result.json``, or None when missing or unreadable (a stage cut short)."""
    try:
        data = json.loads((work_dir / "result.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
