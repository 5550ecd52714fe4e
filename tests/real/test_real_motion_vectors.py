"""Codec motion vectors on real footage: car-detection.mp4 (static camera, cars crossing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ci_guard import require

from mats_lab.data.decode import open_video, probe_video
from mats_lab.data.motion_vectors import motion_magnitude, read_motion_vectors

pytestmark = pytest.mark.real

VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"
CAR = VIDEOS / "car-detection.mp4"


@pytest.fixture(scope="module")
def car() -> Path:
    require(
        CAR.is_file(), f"real clip {CAR} is absent (expected the repo's sibling 'shared' folder)"
    )
    return CAR


def test_vectors_exist_on_inter_frames_and_not_on_the_first(car: Path) -> None:
    info = probe_video(car)
    idx = np.array([0, 1, 2, 100, 200, info.num_frames - 1])
    vectors, size = read_motion_vectors(car, idx)
    assert size == (info.height, info.width) == (432, 768)
    assert vectors[0].size == 0  # frame 0 is an I-frame
    assert all(v.size > 100 for v in vectors[1:3])
    maps = motion_magnitude(car, idx)
    assert maps.shape == (idx.size, 432, 768) and maps.dtype == np.float32
    assert not maps[0].any() and (maps >= 0).all()


def test_large_codec_motion_sits_where_pixels_change(car: Path) -> None:
    """Where the codec says a block moved by more than 2 px, the frame differs from the
    previous one far more than where it says nothing moved (the still parking lot)."""
    idx = np.arange(61, 377, 6)  # skips the I-frames (at multiples of 60)
    maps = motion_magnitude(car, idx)  # (n, H, W)
    with open_video(car) as reader:
        now = reader.get_frames(idx).astype(np.float32).mean(axis=-1)  # (n, H, W) grey
        before = reader.get_frames(idx - 1).astype(np.float32).mean(axis=-1)
    change = np.abs(now - before)
    moving, still = maps > 2.0, maps == 0
    assert 0.01 < moving.mean() < 0.5  # cars: a minority of the picture
    assert still.mean() > 0.3
    assert change[moving].mean() > 4 * change[still].mean()
