"""``mats-lab convert-ckpt``: an official VideoMAE / EVEREST checkpoint as mats-lab / MMAction2
weights (the key mapping itself is :mod:`mats_lab.models.convert`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mats_lab.models.convert import TARGETS, convert_official_state_dict, unwrap_state_dict

__all__ = ["TARGETS", "convert_checkpoint"]


def convert_checkpoint(src: Path, dst: Path, to: str) -> int:
    """Write ``dst`` with ``src``'s weights under the ``to`` model's keys; returns the number of
    tensors. Raises ValueError for an unknown target or unmappable keys."""
    if to not in TARGETS:
        raise ValueError(f"--to must be one of {', '.join(TARGETS)}, got {to!r}")
    # Official checkpoints may carry their argparse namespace; allow exactly that class.
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(src, map_location="cpu", weights_only=True)
    state = convert_official_state_dict(unwrap_state_dict(checkpoint), to)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "meta": {"converted_from": str(src), "target": to}}, dst)
    return len(state)
