"""Command lines for MMAction2's own ``tools/train.py`` and ``tools/test.py``.

mats-lab runs training exactly as a user of MMAction2 would: the unchanged scripts shipped in
the mmaction2 wheel (``mmaction/.mim/tools``), in a subprocess, with the config file and
``--cfg-options``. Locating them does not import mmaction (or torch).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["mmaction_tool", "test_command", "train_command"]


def mmaction_tool(name: str) -> Path:
    """Path of ``mmaction/.mim/tools/<name>`` in the installed mmaction2."""
    spec = importlib.util.find_spec("mmaction")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("mmaction2 is not installed (pip install mmaction2==1.2.0)")
    path = Path(next(iter(spec.submodule_search_locations))) / ".mim" / "tools" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the mmaction2 install")
    return path


def _options(cfg_options: Mapping[str, object] | None) -> list[str]:
    if not cfg_options:
        return []
    # mmengine's DictAction parses numbers, True/False/None and [lists] back from text.
    return ["--cfg-options", *(f"{k}={v}" for k, v in cfg_options.items())]


def train_command(
    config: str | Path,
    work_dir: str | Path,
    resume: bool = False,
    amp: bool = False,
    cfg_options: Mapping[str, object] | None = None,
) -> list[str]:
    """``python tools/train.py CONFIG --work-dir W [--resume] [--amp] [--cfg-options ...]``."""
    cmd = [sys.executable, str(mmaction_tool("train.py")), str(config), "--work-dir", str(work_dir)]
    if resume:
        cmd.append("--resume")
    if amp:
        cmd.append("--amp")
    return cmd + _options(cfg_options)


def test_command(
    config: str | Path,
    checkpoint: str | Path,
    work_dir: str | Path,
    cfg_options: Mapping[str, object] | None = None,
) -> list[str]:
    """``python tools/test.py CONFIG CHECKPOINT --work-dir W [--cfg-options ...]``."""
    return [
        sys.executable,
        str(mmaction_tool("test.py")),
        str(config),
        str(checkpoint),
        "--work-dir",
        str(work_dir),
        *_options(cfg_options),
    ]
