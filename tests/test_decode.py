"""Verified decoding (mats_lab.data.decode): every backend, every container, every failure.

The test videos carry their frame index in the pixels (six vertical bands, band ``b`` bright
when bit ``b`` of the index is set), which survives lossy compression, so a test can tell
WHICH frame came back.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from mats_lab.data import decode, probe
from mats_lab.data.decode import (
    VideoDecodeError,
    available_backends,
    open_video,
    probe_video,
)

NUM_FRAMES = 40
WIDTH, HEIGHT = 64, 48
BANDS = 6  # 2**6 > NUM_FRAMES

# (file suffix, codec): every combination is written by PyAV's bundled FFmpeg.
FORMATS = [
    ("mp4", "libx264"),
    ("avi", "mpeg4"),
    ("mkv", "libx264"),
    ("webm", "libvpx"),  # VP8
    ("webm", "libvpx-vp9"),
]
FORMAT_IDS = [f"{suffix}-{codec}" for suffix, codec in FORMATS]


def index_frame(i: int) -> np.ndarray:
    """Frame ``i``: grey bands encoding ``i`` in binary, ``(H, W, 3)`` uint8 RGB."""
    img = np.full((HEIGHT, WIDTH, 3), 30, np.uint8)
    for b in range(BANDS):
        if (i >> b) & 1:
            img[:, b * WIDTH // BANDS : (b + 1) * WIDTH // BANDS] = 220
    return img


def read_index(frame: np.ndarray) -> int:
    """The index encoded by :func:`index_frame`, read from the band centres."""
    index = 0
    for b in range(BANDS):
        centre = b * WIDTH // BANDS + WIDTH // (2 * BANDS)
        if frame[:, centre - 1 : centre + 1].mean() > 128:
            index |= 1 << b
    return index


def write_video(path: Path, codec: str, num_frames: int = NUM_FRAMES) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    return {
        fid: write_video(folder / f"clip_{codec}.{suffix}", codec)
        for fid, (suffix, codec) in zip(FORMAT_IDS, FORMATS, strict=True)
    }


# Under CI=true a missing decord is a failure (the decord tests then fail with decode's
# "backend 'decord' needs the decord package"), never a skip.
ON_CI = os.environ.get("CI") == "true"
NO_DECORD = "decord" not in available_backends() and not ON_CI


def backend_param(name: str) -> Any:
    reason = "decord is not installed (x86-64 only)"
    skip = name not in available_backends() and not ON_CI
    return pytest.param(name, marks=pytest.mark.skipif(skip, reason=reason))


def test_decord_is_installed_on_ci() -> None:
    if ON_CI:
        assert "decord" in available_backends(), "CI=true: decord must be installed (x86-64)"


BACKENDS = [backend_param(b) for b in decode.BACKENDS]


# -- right frames, true count -------------------------------------------------------------------


@pytest.mark.parametrize("fid", FORMAT_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_random_indices_return_the_frames_asked_for(
    videos: dict[str, Path], fid: str, backend: str
) -> None:
    rng = np.random.default_rng(7)
    with open_video(videos[fid], backend) as reader:
        assert len(reader) == NUM_FRAMES
        for _ in range(3):
            # unsorted, with repeats, touching both ends
            idx = np.concatenate([rng.integers(0, NUM_FRAMES, 9), [NUM_FRAMES - 1, 0, 5, 5]])
            frames = reader.get_frames(idx)
            assert frames.shape == (idx.size, HEIGHT, WIDTH, 3)
            assert frames.dtype == np.uint8
            assert [read_index(f) for f in frames] == idx.tolist()


@pytest.mark.parametrize("fid", FORMAT_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_all_frames_are_distinct_and_in_order(
    videos: dict[str, Path], fid: str, backend: str
) -> None:
    with open_video(videos[fid], backend) as reader:
        frames = reader.get_frames(range(len(reader)))
    assert [read_index(f) for f in frames] == list(range(NUM_FRAMES))


@pytest.mark.parametrize("fid", FORMAT_IDS)
def test_probe_trusts_the_container_only_when_packets_confirm_it(
    videos: dict[str, Path], fid: str
) -> None:
    info = probe_video(videos[fid])
    assert info.num_frames == NUM_FRAMES
    assert (info.height, info.width) == (HEIGHT, WIDTH)
    assert info.fps == pytest.approx(25.0)
    if fid.startswith(("mkv", "webm")):
        # STACK.md item 9: PyAV reports 0 frames for these containers.
        assert info.container_frames == 0
        assert info.counted_by == "decoding"
    else:
        assert info.container_frames == NUM_FRAMES
        assert info.counted_by == "container"
    assert info.pts is not None and len(info.pts) == NUM_FRAMES


@pytest.mark.parametrize("backend", BACKENDS)
def test_container_reporting_zero_frames_decodes_into_distinct_frames(
    videos: dict[str, Path], backend: str
) -> None:
    path = videos["mkv-libx264"]
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0  # the case mmaction's PyAVInit gets wrong
    with open_video(path, backend) as reader:
        assert reader.num_frames == NUM_FRAMES
        frames = reader.get_frames(np.arange(NUM_FRAMES)[::-1])
    assert [read_index(f) for f in frames] == list(range(NUM_FRAMES))[::-1]


@pytest.mark.parametrize("claimed", [NUM_FRAMES + 1, NUM_FRAMES - 1])
def test_wrong_container_count_is_corrected_by_counting(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch, claimed: int
) -> None:
    monkeypatch.setattr(probe, "_container_frame_count", lambda stream: claimed)
    info = probe_video(videos["mp4-libx264"])
    assert info.container_frames == claimed
    assert info.counted_by == "decoding"
    assert info.num_frames == NUM_FRAMES


def test_pyav_threads_give_the_same_frames(videos: dict[str, Path]) -> None:
    idx = [39, 3, 17, 17, 0]
    with open_video(videos["mp4-libx264"], "pyav", num_threads=0) as reader:
        assert [read_index(f) for f in reader.get_frames(idx)] == idx


# -- bad indices, bad files ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [NUM_FRAMES, NUM_FRAMES + 7, -1])
def test_out_of_range_index_names_file_and_index(
    videos: dict[str, Path], backend: str, bad: int
) -> None:
    path = videos["webm-libvpx-vp9"]
    with open_video(path, backend) as reader:
        with pytest.raises(VideoDecodeError, match=rf"{path.name}.*index {bad}\b"):
            reader.get_frames([0, 3, bad])


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_file(tmp_path: Path, backend: str) -> None:
    with pytest.raises(VideoDecodeError, match=r"nothere\.mp4: no such file"):
        open_video(tmp_path / "nothere.mp4", backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_file(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VideoDecodeError, match=r"empty\.mp4: empty file"):
        open_video(path, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("suffix", ["mp4", "mkv", "avi"])
def test_corrupt_file(tmp_path: Path, backend: str, suffix: str) -> None:
    path = tmp_path / f"noise.{suffix}"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, np.uint8).tobytes())
    with pytest.raises(VideoDecodeError, match=rf"noise\.{suffix}"):
        open_video(path, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_mp4(videos: dict[str, Path], tmp_path: Path, backend: str) -> None:
    data = videos["mp4-libx264"].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: unreadable
    with pytest.raises(VideoDecodeError, match=r"cut\.mp4"):
        open_video(path, backend)


def test_unknown_backend(videos: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="unknown video backend 'ffmpeg'"):
        open_video(videos["mp4-libx264"], "ffmpeg")


def test_no_indices(videos: dict[str, Path]) -> None:
    with open_video(videos["mp4-libx264"]) as reader:
        with pytest.raises(VideoDecodeError, match="no frame indices"):
            reader.get_frames([])


# -- the identity checks catch a decoder that returns the wrong frame ---------------------------


def _patch_probe(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    real = decode.probe_video

    def fake(path: str | os.PathLike[str]) -> decode.StreamInfo:
        return dataclasses.replace(real(path), **changes)

    monkeypatch.setattr(decode, "probe_video", fake)
    real_container = decode.probe_container

    def fake_container(container: Any, path: str) -> decode.StreamInfo:
        return dataclasses.replace(real_container(container, path), **changes)

    monkeypatch.setattr(decode, "probe_container", fake_container)


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_count_too_high_raises_instead_of_repeating_frames(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    # As if the count were wrong and undetected: the sequential decoders notice at the end.
    path = videos["avi-mpeg4"]
    real_pts = probe_video(path).pts
    assert real_pts is not None
    _patch_probe(monkeypatch, num_frames=NUM_FRAMES + 1, pts=(*real_pts, real_pts[-1] + 1))
    with open_video(path, backend) as reader:
        assert reader.get_frames([NUM_FRAMES - 1]).shape[0] == 1
        with pytest.raises(VideoDecodeError, match=rf"clip_mpeg4\.avi.*index {NUM_FRAMES}\b"):
            reader.get_frames([2, NUM_FRAMES])


def test_pyav_detects_a_skipped_frame_by_timestamp(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The expected timestamps say frame 3 comes later than it does: as if the decoder had
    # silently dropped one frame before it.
    path = videos["mp4-libx264"]
    pts = probe_video(path).pts
    assert pts is not None
    shifted = (*pts[:3], *pts[4:], pts[-1] + (pts[-1] - pts[-2]))
    _patch_probe(monkeypatch, pts=shifted)
    with open_video(path, "pyav") as reader:
        assert [read_index(f) for f in reader.get_frames([0, 2])] == [0, 2]
        with pytest.raises(VideoDecodeError, match=r"clip_libx264\.mp4: decoded frame 3"):
            reader.get_frames([10])


class _StutteringCapture:
    """A cv2.VideoCapture whose 5th grab repeats the previous frame instead of advancing."""

    real = cv2.VideoCapture

    def __init__(self, *args: Any) -> None:
        self._cap = self.real(*args)
        self._grabs = 0

    def grab(self) -> bool:
        self._grabs += 1
        return True if self._grabs == 5 else self._cap.grab()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cap, name)


def test_opencv_detects_a_repeated_frame_by_position(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = videos["mkv-libx264"]
    monkeypatch.setattr(decode.cv2, "VideoCapture", _StutteringCapture)
    with open_video(path, "opencv") as reader:
        with pytest.raises(VideoDecodeError, match=r"clip_libx264\.mkv: OpenCV is at position"):
            reader.get_frames([1, 6])


@pytest.mark.skipif(NO_DECORD, reason="decord is not installed")
def test_decord_refuses_an_index_of_the_wrong_length(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = videos["webm-libvpx"]
    _patch_probe(monkeypatch, num_frames=NUM_FRAMES - 1)
    with pytest.raises(VideoDecodeError, match=r"clip_libvpx\.webm: decord indexes 40 frames"):
        open_video(path, "decord")


@pytest.mark.skipif(NO_DECORD, reason="decord is not installed")
def test_decord_refuses_an_index_with_misplaced_frames(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = videos["mp4-libx264"]
    pts = probe_video(path).pts
    assert pts is not None
    step = pts[1] - pts[0]
    moved = tuple(p + step if i >= 20 else p for i, p in enumerate(pts))  # a gap at frame 20
    _patch_probe(monkeypatch, pts=moved)
    with pytest.raises(VideoDecodeError, match=r"clip_libx264\.mp4: decord places frame 20"):
        open_video(path, "decord")


def test_readers_do_not_share_state(videos: dict[str, Path]) -> None:
    a = open_video(videos["mp4-libx264"])
    b = open_video(videos["avi-mpeg4"])
    assert read_index(a.get_frames([9])[0]) == 9
    assert read_index(b.get_frames([11])[0]) == 11
    assert read_index(a.get_frames([30])[0]) == 30
    a.close()
    b.close()
    assert a.closed and b.closed
