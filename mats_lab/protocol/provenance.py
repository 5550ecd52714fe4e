"""Provenance every record carries: the commit of the code that produced it (MLflow tag
``git_commit`` of the sweep's runs, the report's header).

Only the standard library is imported here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["git_commit"]


def git_commit(path: Path) -> str:
    """The commit of the repository holding ``path`` (``unknown`` outside git)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"
