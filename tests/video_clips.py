"""Small generated videos for tests (imported by test modules; pytest puts tests/ on sys.path).

``moving_frames`` draws a textured square moving a known number of pixels per frame over a
still textured background; ``write_video`` encodes frames with any PyAV encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

SIDE = 96  # frame size: 6 x 6 macroblocks
PATCH = 32  # the moving textured square
START = (8, 8)  # its top-left (y, x) in frame 0
NUM_FRAMES = 12


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    noise = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    return cv2.GaussianBlur(noise, (5, 5), 0)


def moving_frames(dy: int, dx: int, seed: int = 0, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """``(T, SIDE, SIDE, 3)`` uint8 RGB: a textured square starting at ``START`` and moving
    ``(dy, dx)`` px per frame over a still textured background."""
    rng = np.random.default_rng(seed)
    background = _texture(rng, SIDE, SIDE)
    patch = _texture(rng, PATCH, PATCH)
    frames = np.repeat(background[None], num_frames, axis=0)
    for t in range(num_frames):
        y, x = START[0] + dy * t, START[1] + dx * t
        frames[t, y : y + PATCH, x : x + PATCH] = patch
    return frames


def write_video(
    path: Path, frames: np.ndarray, codec: str = "libx264", options: dict | None = None
) -> Path:
    """Encode ``(T, H, W, 3)`` uint8 RGB ``frames`` (even H, W) at 25 fps."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if options:
            stream.codec_context.options = options
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_h264(path: Path, frames: np.ndarray, b_frames: bool) -> Path:
    """H.264 at high quality, one thread. Without ``b_frames`` every inter frame is a P-frame
    referencing the previous frame only, so its vectors are the motion per frame (with several
    references x264 may point two frames back)."""
    options = {"crf": "10", "threads": "1"}
    if not b_frames:
        options.update(bf="0", refs="1")
    return write_video(path, frames, "libx264", options)


# -- frames that say which frame they are ------------------------------------------------------

INDEX_W, INDEX_H, INDEX_BANDS = 64, 48, 7  # 2**7 frames can be told apart

# A not-coded MPEG-4 Part 2 VOP (start code 00 00 01 B6, vop_coded = 0): the 6-byte packets of
# packed B-frame AVIs (taken from ../shared/data/videos/eye-makeup-xvid-packed.avi). In place of
# a coded frame, FFmpeg's decoder outputs no frame for it: a real dropped frame.
NOT_CODED_VOP = b"\x00\x00\x01\xb6Q\xcf"


def index_frame(i: int) -> np.ndarray:
    """Frame ``i``: grey bands encoding ``i`` in binary, ``(INDEX_H, INDEX_W, 3)`` uint8 RGB."""
    img = np.full((INDEX_H, INDEX_W, 3), 30, np.uint8)
    for b in range(INDEX_BANDS):
        if (i >> b) & 1:
            img[:, b * INDEX_W // INDEX_BANDS : (b + 1) * INDEX_W // INDEX_BANDS] = 220
    return img


def read_index(frame: np.ndarray) -> int:
    """The index :func:`index_frame` encoded in ``frame`` (read at the band centres)."""
    index = 0
    for b in range(INDEX_BANDS):
        centre = b * INDEX_W // INDEX_BANDS + INDEX_W // (2 * INDEX_BANDS)
        if frame[:, centre - 1 : centre + 1].mean() > 128:
            index |= 1 << b
    return index


def write_index_video(
    path: Path,
    codec: str,
    num_frames: int = 40,
    stamps: list[int] | None = None,
    options: dict | None = None,
) -> Path:
    """Frames ``0 .. num_frames - 1`` (:func:`index_frame`) at 25 fps, or at ``stamps``
    (milliseconds: variable frame rate, a non-zero start)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = INDEX_W, INDEX_H, "yuv420p"
        if options:
            stream.codec_context.options = options
        if stamps is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")
            if stamps is not None:
                frame.pts, frame.time_base = stamps[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def remux(src: Path, dst: Path, edit: Callable[[int, av.Packet], list[av.Packet]]) -> Path:
    """Copy ``src``'s video packets into ``dst`` (no re-encoding), packet ``n`` replaced by
    ``edit(n, packet)``."""
    with av.open(str(src)) as source, av.open(str(dst), "w") as target:
        stream = source.streams.video[0]
        out = target.add_stream_from_template(stream)
        n = 0
        for packet in source.demux(stream):
            if packet.dts is None:  # the demuxer's empty flush packet
                continue
            for new in edit(n, packet):
                new.stream = out
                target.mux(new)
            n += 1
    return dst


def _packet(data: bytes, like: av.Packet) -> av.Packet:
    new = av.Packet(data)
    new.pts, new.dts, new.time_base = like.pts, like.dts, like.time_base
    return new


def write_dropped_frame_video(folder: Path, suffix: str = "mp4", at: int = 10) -> Path:
    """MPEG-4 Part 2 frames ``0..39`` whose packet ``at`` is a not-coded VOP: every packet is
    timed, but the decoder outputs 39 frames (frame ``at`` never comes out)."""
    src = write_index_video(folder / f"drop-src.{suffix}", "mpeg4")

    def drop(n: int, packet: av.Packet) -> list[av.Packet]:
        return [_packet(NOT_CODED_VOP, packet)] if n == at else [packet]

    return remux(src, folder / f"dropped-frame.{suffix}", drop)


def write_repeated_frame_video(folder: Path, at: int = 10) -> Path:
    """Intra-only MPEG-4 frames ``0..39`` in Matroska with packet ``at`` stored twice with the
    same timestamp: the decoder outputs frame ``at`` twice."""
    src = write_index_video(folder / "repeat-src.mkv", "mpeg4", options={"g": "1"})

    def repeat(n: int, packet: av.Packet) -> list[av.Packet]:
        return [packet, _packet(bytes(packet), packet)] if n == at else [packet]

    return remux(src, folder / "repeated-frame.mkv", repeat)
