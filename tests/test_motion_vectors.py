"""Codec motion vectors (mats_lab.data.motion_vectors): known motion in a generated H.264
clip gives vectors of that size and direction on the moving patch and zeros on still areas."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from video_clips import NUM_FRAMES, PATCH, SIDE, START, moving_frames, write_h264, write_video

from mats_lab.data import motion_vectors
from mats_lab.data.decode import VideoDecodeError, probe_video
from mats_lab.data.motion_vectors import (
    MV_DTYPE,
    motion_magnitude,
    read_motion_vectors,
    render_magnitude,
)


def interior(t: int, dy: int, dx: int) -> tuple[slice, slice]:
    """Pixels well inside the moving square in frame ``t`` (4 px margin)."""
    y, x = START[0] + dy * t, START[1] + dx * t
    return slice(y + 4, y + PATCH - 4), slice(x + 4, x + PATCH - 4)


def far_from_square(t: int, dy: int, dx: int) -> np.ndarray:
    """``(SIDE, SIDE)`` bool: more than 16 px from the square in frame ``t``."""
    y, x = START[0] + dy * t, START[1] + dx * t
    mask = np.ones((SIDE, SIDE), bool)
    mask[max(y - 16, 0) : y + PATCH + 16, max(x - 16, 0) : x + PATCH + 16] = False
    return mask


MOTIONS = {"right-2px": (0, 2), "down-3px": (3, 0)}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("mv")
    out = {
        name: write_h264(folder / f"{name}.mp4", moving_frames(*motion), b_frames=False)
        for name, motion in MOTIONS.items()
    }
    out["bframes"] = write_h264(folder / "bframes.mp4", moving_frames(0, 2), b_frames=True)
    return out


# -- rendering ---------------------------------------------------------------------------------


def _vectors(*rows: tuple[int, int, int, int, int, int, int]) -> np.ndarray:
    """Rows of ``(w, h, dst_x, dst_y, motion_x, motion_y, motion_scale)``."""
    out = np.zeros(len(rows), MV_DTYPE)
    for i, (w, h, dst_x, dst_y, mx, my, scale) in enumerate(rows):
        out[i] = (-1, w, h, dst_x, dst_y, dst_x, dst_y, 0, mx, my, scale)
    return out


def test_render_paints_each_block_centred_on_dst_with_the_largest_magnitude() -> None:
    vectors = _vectors(
        (16, 16, 8, 8, 12, 16, 4),  # (3, 4) px -> 5 on rows/cols 0..15
        (8, 8, 4, 4, 4, 0, 4),  # 1 px on 0..7: overlaps, the larger (5) wins
        (8, 8, 28, 20, 0, -8, 4),  # 2 px on rows 16..23, cols 24..31
        (16, 16, 36, 8, 40, 0, 4),  # 10 px, half outside the 40-px-wide frame: clipped
        (16, 16, 8, 24, 99, 99, 0),  # motion_scale 0: ignored
    )
    got = render_magnitude(vectors, 32, 40)
    want = np.zeros((32, 40), np.float32)
    want[0:16, 0:16] = 5.0
    want[16:24, 24:32] = 2.0
    want[0:16, 28:40] = 10.0
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want)


def test_render_without_vectors_is_zero() -> None:
    assert not render_magnitude(np.zeros(0, MV_DTYPE), 8, 8).any()


# -- known motion ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MOTIONS))
def test_moving_square_has_its_motion_and_the_still_background_none(
    clips: dict[str, Path], name: str
) -> None:
    dy, dx = MOTIONS[name]
    maps = motion_magnitude(clips[name], np.arange(NUM_FRAMES))
    vectors, size = read_motion_vectors(clips[name], np.arange(NUM_FRAMES))
    assert maps.shape == (NUM_FRAMES, SIDE, SIDE) and maps.dtype == np.float32
    assert size == (SIDE, SIDE)
    assert not maps[0].any() and vectors[0].size == 0  # the I-frame has no vectors
    speed = float(np.hypot(dy, dx))
    for t in range(1, NUM_FRAMES):
        inside = maps[t][interior(t, dy, dx)]
        assert np.median(inside) == pytest.approx(speed, abs=0.25), t
        assert (maps[t][far_from_square(t, dy, dx)] == 0).mean() > 0.98, t
        # direction: src = dst + motion / scale, so content moving by (dy, dx) has motion
        # pointing back to where it came from, -(dy, dx)
        v = vectors[t]
        ys, xs = interior(t, dy, dx)
        on = (v["dst_y"] >= ys.start) & (v["dst_y"] < ys.stop)
        on &= (v["dst_x"] >= xs.start) & (v["dst_x"] < xs.stop)
        assert on.any()
        scale = v["motion_scale"][on].astype(float)
        assert np.median(v["motion_x"][on] / scale) == pytest.approx(-dx, abs=0.5)
        assert np.median(v["motion_y"][on] / scale) == pytest.approx(-dy, abs=0.5)


def test_b_frames_also_give_motion_on_the_square_only(clips: dict[str, Path]) -> None:
    maps = motion_magnitude(clips["bframes"], np.arange(NUM_FRAMES))
    vectors, _ = read_motion_vectors(clips["bframes"], np.arange(NUM_FRAMES))
    assert any((v["source"] > 0).any() for v in vectors)  # really has B-frame vectors
    for t in range(1, NUM_FRAMES):
        assert maps[t][interior(t, 0, 2)].min() > 0, t
        assert (maps[t][far_from_square(t, 0, 2)] == 0).mean() > 0.98, t


def test_any_order_and_repeats_give_the_frames_asked_for(clips: dict[str, Path]) -> None:
    path = clips["right-2px"]
    everything = motion_magnitude(path, np.arange(NUM_FRAMES))
    idx = np.array([7, 2, 7, 0, 11, 3])
    np.testing.assert_array_equal(motion_magnitude(path, idx), everything[idx])


# -- errors name the file ----------------------------------------------------------------------


def test_out_of_range_index_names_file_and_index(clips: dict[str, Path]) -> None:
    path = clips["right-2px"]
    with pytest.raises(VideoDecodeError, match=rf"{path.name}.*frame index {NUM_FRAMES}"):
        motion_magnitude(path, [0, NUM_FRAMES])


def test_missing_empty_and_corrupt_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    empty = tmp_path / "empty.mp4"
    empty.touch()
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    for path in (missing, empty, corrupt):
        with pytest.raises(VideoDecodeError, match=path.name):
            motion_magnitude(path, [0])


def test_codec_without_motion_vectors_is_refused(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.webm", moving_frames(0, 2)[:4, :64, :64], "libvpx-vp9")
    with pytest.raises(VideoDecodeError, match=r"clip\.webm: codec 'vp9' exports no motion"):
        motion_magnitude(path, [0, 1])


def test_a_skipped_frame_is_detected_by_timestamp(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = clips["right-2px"]
    info = probe_video(path)
    assert info.pts is not None
    shifted = info.pts[:3] + tuple(p + 1 for p in info.pts[3:])
    monkeypatch.setattr(
        motion_vectors, "probe_video", lambda p: dataclasses.replace(info, pts=shifted)
    )
    with pytest.raises(VideoDecodeError, match=r"decoded frame 3 has timestamp"):
        motion_magnitude(path, [5])
