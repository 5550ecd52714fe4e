"""Shared fixtures. The stack fixes are applied before any test imports mmaction.models."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"


@pytest.fixture(scope="session")
def mm():
    """Import the MMAction2 side of mats-lab (registers everything, applies the fixes)."""
    from mmengine.registry import init_default_scope

    import mats_lab.mm

    init_default_scope("mmaction")
    return mats_lab.mm
