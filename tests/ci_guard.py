"""What a test needs from the machine: a skip on a developer's machine that lacks it, a failure
under ``CI=true`` (CI installs or ships everything the suite uses, so a missing server, clip
or backend there is a broken set-up, not a reason to pass)."""

from __future__ import annotations

import os

import pytest

__all__ = ["in_ci", "require"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(ok: bool, message: str) -> None:
    """Skip (fail under ``CI=true``) with ``message`` unless ``ok``."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)
