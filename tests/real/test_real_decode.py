"""The three decoding backends agree on real footage (../shared/data/videos)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ci_guard import in_ci, require

from mats_lab.data.decode import available_backends, open_video, probe_video

pytestmark = pytest.mark.real

VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"
CLIPS = {"demo.mp4": 280, "car-detection.mp4": 377}  # frame counts from the folder's README


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_backends_agree_on_real_clips(name: str) -> None:
    path = VIDEOS / name
    require(path.is_file(), f"real clip {path} is absent (expected the repo's sibling 'shared')")
    if in_ci():
        assert "decord" in available_backends(), "CI=true: decord must be installed"
    info = probe_video(path)
    assert info.num_frames == CLIPS[name]
    idx = np.random.default_rng(0).integers(0, info.num_frames, 8)
    idx = np.concatenate([[0], idx, [info.num_frames - 1]])
    frames = {}
    for backend in available_backends():
        with open_video(path, backend) as reader:
            assert reader.num_frames == info.num_frames
            frames[backend] = reader.get_frames(idx).astype(np.float32)
    assert len(frames) >= 2
    reference = frames["pyav"]
    assert reference.shape == (idx.size, info.height, info.width, 3)
    for backend, got in frames.items():
        diff = np.abs(got - reference).mean(axis=(1, 2, 3))  # (n,) per frame
        assert diff.max() < 1.0, f"{backend} differs from pyav on {name}: {diff.round(2)}"
    # distant frames differ far more than backends do, so the check can tell frames apart
    with open_video(path, "pyav") as reader:
        pair = reader.get_frames([0, 100]).astype(np.float32)
    assert np.abs(pair[0] - pair[1]).mean() > 5.0
