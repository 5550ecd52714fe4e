"""Small generated videos for tests (imported by test modules; pytest puts tests/ on sys.path).

``moving_frames`` draws a textured square moving a known number of pixels per frame over a
still textured background; ``write_video`` encodes frames with any PyAV encoder.
"""

from __future__ import annotations

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
