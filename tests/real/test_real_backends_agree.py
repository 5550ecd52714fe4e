"""Every backend decodes every real clip (../shared/data/videos) to the same frames as OpenCV,
frame by frame, including the UCF101-style Xvid AVI with packed B-frames whose PyAV
timestamps come out permuted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ci_guard import require

from mats_lab.data.decode import PyAVReader, available_backends, open_video, probe_video

pytestmark = pytest.mark.real

VIDEOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos"
CLIPS = {"demo.mp4": 280, "car-detection.mp4": 377, "eye-makeup-xvid-packed.avi": 80}
PACKED = "eye-makeup-xvid-packed.avi"


def _clip(name: str) -> Path:
    path = VIDEOS / name
    require(path.is_file(), f"real clip {path} is absent (expected the repo's sibling 'shared')")
    return path


def _frame_diffs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)``: the mean absolute difference of every pair of ``(N, H, W, 3) uint8`` frames,
    frame by frame (a float copy of a whole 377-frame 768x432 clip takes 1.5 GB)."""
    return np.array([np.abs(x.astype(np.int16) - y).mean() for x, y in zip(a, b, strict=True)])


def _backends() -> tuple[str, ...]:
    found = available_backends()
    require("decord" in found, "decord is not installed (x86-64 only)")
    return found


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_every_frame_matches_opencv(name: str) -> None:
    path = _clip(name)
    info = probe_video(path)
    assert info.num_frames == CLIPS[name]
    with open_video(path, "opencv") as reader:
        reference = reader.get_frames(range(info.num_frames))  # sequential, position-checked
    for backend in (b for b in _backends() if b != "opencv"):  # opencv is the reference
        with open_video(path, backend) as reader:
            got = reader.get_frames(range(info.num_frames))
        diff = _frame_diffs(got, reference)  # (N,)
        assert diff.max() < 1.0, f"{backend} differs from opencv on {name}: {diff.round(2)}"
    # consecutive frames differ, so a shift by one frame would not pass unnoticed
    steps = np.abs(np.diff(reference[:20].astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    assert (steps > 0).all()


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_random_access_matches_sequential_decoding(name: str) -> None:
    path = _clip(name)
    with open_video(path, "opencv") as reader:
        reference = reader.get_frames(range(len(reader)))
    idx = np.random.default_rng(0).integers(0, len(reference), 24)  # unsorted, repeats
    for backend in _backends():
        with open_video(path, backend) as reader:
            for chunk in np.array_split(idx, 4):  # several reads on one reader: seeks back
                got = reader.get_frames(chunk).astype(np.float32)
                diff = np.abs(got - reference[chunk]).mean(axis=(1, 2, 3))
                assert diff.max() < 1.0, f"{backend} on {name}, frames {chunk}: {diff.round(2)}"


def test_packed_bframes_are_identified_by_their_dts_and_read_exactly() -> None:
    path = _clip(PACKED)
    info = probe_video(path)
    assert info.ts_source == "dts"  # their pts come out permuted (STACK.md item 12)
    with open_video(path, "opencv") as reader:
        reference = reader.get_frames(range(80))
    for backend in ("pyav", "decord"):
        if backend not in _backends():
            continue
        with open_video(path, backend) as reader:
            got = reader.get_frames(range(80))
        assert np.array_equal(got, reference), f"{backend} is not byte-identical to OpenCV"


def test_packed_bframes_seek_exactly_between_keyframes(tmp_path: Path) -> None:
    # The packed clip's 80 packets stored three times over (stream copy, timestamps shifted):
    # keyframes at 0, 80 and 160, so PyAV seeks on a dts-identified stream.
    import av

    src, dst = _clip(PACKED), tmp_path / "thrice.avi"
    with av.open(str(src)) as source, av.open(str(dst), "w") as target:
        stream = source.streams.video[0]
        out = target.add_stream_from_template(stream)
        packets = [p for p in source.demux(stream) if p.dts is not None]
        for repeat in range(3):
            for p in packets:
                copy = av.Packet(bytes(p))
                copy.dts = p.dts + repeat * len(packets)
                copy.pts = None if p.pts is None else p.pts + repeat * len(packets)
                copy.time_base, copy.is_keyframe, copy.stream = p.time_base, p.is_keyframe, out
                target.mux(copy)
    info = probe_video(dst)
    assert (info.num_frames, info.ts_source, info.keyframes) == (240, "dts", (0, 80, 160))
    with open_video(dst, "opencv") as reader:
        reference = reader.get_frames(range(240))
    with PyAVReader(dst) as reader:
        for idx in ([200, 10, 100, 239, 81, 80, 79], [150, 160, 161]):
            assert np.array_equal(reader.get_frames(idx), reference[idx])
        assert reader.seeks >= 2
