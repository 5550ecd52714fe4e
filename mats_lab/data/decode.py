"""Verified video decoding: the true frame count, and exactly the frames asked for.

Containers lie about their length (STACK.md item 9): PyAV reports 0 frames for many MKV and
WebM files, OpenCV's count can be one too high, and decord trusts the container's count and
may then return repeated frames or hang in native code when asked past the real end
(dmlc/decord#373). mmaction2's loaders pass such numbers straight to the frame sampler, so a
clip silently becomes 16 copies of frame 0. This module never does that:

* :func:`probe_video` establishes the true frame count and each frame's presentation time
  with PyAV. The container's count is trusted only when the demuxer sees exactly that many
  video packets with distinct timestamps; otherwise (count 0, or a disagreement) the stream is
  decoded and its frames are counted.
* Every reader (:func:`open_video`, backends ``pyav``, ``decord``, ``opencv``) reports that
  true count and checks each returned frame's identity:

  - ``pyav`` decodes sequentially from the first frame, counting, and checks that the n-th
    decoded frame carries the n-th presentation timestamp (a skipped or repeated frame shows
    up as a timestamp mismatch);
  - ``opencv`` grabs sequentially, counting, and checks OpenCV's own frame position after
    every grab;
  - ``decord`` gives no per-frame identity, so its frame index is checked instead, once, when
    the reader opens: its length must equal the true count and its per-frame timestamps must
    match the stream's. Frames are then fetched with ``get_batch`` on sorted unique indices
    (repeated indices in one batch are known to give inconsistent results, dmlc/decord#195).

Anything wrong — a missing, empty or corrupt file, an index outside ``[0, num_frames)``, a
decoder that returns another frame than the one asked for — raises :class:`VideoDecodeError`
naming the file (and the frame index, where there is one).

Pure decoding: numpy, PyAV, OpenCV and (optional) decord; no torch, no mm*. Nothing is cached
between readers.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType
from typing import Any, ClassVar

import av
import cv2
import numpy as np

__all__ = [
    "BACKENDS",
    "DecordReader",
    "OpenCVReader",
    "PyAVReader",
    "StreamInfo",
    "VideoDecodeError",
    "VideoReader",
    "available_backends",
    "open_video",
    "probe_video",
]

BACKENDS: tuple[str, ...] = ("pyav", "decord", "opencv")


class VideoDecodeError(RuntimeError):
    """A video could not be decoded into exactly the frames asked for."""


@dataclass(frozen=True)
class StreamInfo:
    """What :func:`probe_video` established about a file's first video stream.

    Attributes:
        path: the file.
        num_frames: the true number of decodable frames.
        container_frames: the count the container states (0 = it states none).
        counted_by: ``"container"`` (container count confirmed by the packet count) or
            ``"decoding"`` (frames were decoded and counted).
        fps: average frame rate (0.0 when the container states none).
        height: frame height in pixels.
        width: frame width in pixels.
        pts: presentation timestamp of frame ``0 .. num_frames - 1`` in ``time_base`` units,
            or ``None`` when the stream lacks timestamps (identity checks then rely on
            counting alone).
        time_base: unit of ``pts`` in seconds.
    """

    path: str
    num_frames: int
    container_frames: int
    counted_by: str
    fps: float
    height: int
    width: int
    pts: tuple[int, ...] | None
    time_base: Fraction

    def times(self) -> np.ndarray | None:
        """Presentation times in seconds relative to frame 0, ``(num_frames,)`` float64."""
        if self.pts is None:
            return None
        pts = np.asarray(self.pts, dtype=np.float64)
        return (pts - pts[0]) * float(self.time_base)


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoDecodeError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"{path}: empty file (0 bytes)")


def _container_frame_count(stream: Any) -> int:
    """The frame count the container states for ``stream`` (0 = none). Patched in tests."""
    return int(stream.frames or 0)


def _strictly_increasing(values: Sequence[int]) -> bool:
    return all(b > a for a, b in zip(values, values[1:], strict=False))


def probe_video(path: str | os.PathLike[str]) -> StreamInfo:
    """Establish the true frame count and frame timestamps of ``path``'s first video stream.

    Demuxes the whole file (cheap: no decoding). When the container's count is missing or
    disagrees with the number of video packets, or packet timestamps are missing or repeat,
    decodes the stream and counts the frames instead.

    Raises:
        VideoDecodeError: missing, empty or unreadable file, no video stream, no frames.
    """
    path = os.fspath(path)
    _check_file(path)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            container_frames = _container_frame_count(stream)
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            time_base = stream.time_base or Fraction(1, 1)
            height, width = stream.codec_context.height, stream.codec_context.width
            packet_pts = [p.pts for p in container.demux(stream) if p.size > 0]
    except av.FFmpegError as err:
        raise VideoDecodeError(f"{path}: cannot read the file as a video ({err})") from err

    known = [int(p) for p in packet_pts if p is not None]
    # decode order -> presentation order; None when some packet lacks a timestamp
    pts: list[int] | None = sorted(known) if len(known) == len(packet_pts) else None
    trust_container = (
        container_frames > 0
        and container_frames == len(packet_pts)
        and pts is not None
        and _strictly_increasing(pts)
    )
    num_frames = container_frames
    counted_by = "container"
    if not trust_container:
        counted_by = "decoding"
        stamps = _decode_frames_pts(path)
        num_frames = len(stamps)
        pts = [int(s) for s in stamps if s is not None]
        if len(pts) != num_frames or not _strictly_increasing(pts):
            pts = None
    if num_frames == 0:
        raise VideoDecodeError(f"{path}: the video stream has no decodable frames")
    return StreamInfo(
        path=path,
        num_frames=num_frames,
        container_frames=container_frames,
        counted_by=counted_by,
        fps=fps,
        height=height,
        width=width,
        pts=tuple(pts) if pts is not None else None,
        time_base=Fraction(time_base),
    )


def _decode_frames_pts(path: str) -> list[int | None]:
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            # Single-threaded like PyAVReader's default, so that a stream that breaks off
            # mid-way breaks off at the same frame in both.
            return [frame.pts for frame in container.decode(stream)]
    except av.FFmpegError as err:
        raise VideoDecodeError(f"{path}: decoding failed while counting frames ({err})") from err


class VideoReader(ABC):
    """A video file opened for verified random access by frame index.

    Use as a context manager or call :meth:`close`. ``len(reader)`` is the true frame count.
    """

    backend: ClassVar[str]

    def __init__(self, path: str | os.PathLike[str], num_threads: int = 1) -> None:
        self.path = os.fspath(path)
        self.num_threads = num_threads
        self.closed = False
        self.info = probe_video(self.path)

    @property
    def num_frames(self) -> int:
        """The true number of frames."""
        return self.info.num_frames

    @property
    def fps(self) -> float:
        """Average frame rate (0.0 when unknown)."""
        return self.info.fps

    def __len__(self) -> int:
        return self.num_frames

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames ``indices`` (any order, repeats allowed) as ``(n, H, W, 3)`` uint8 RGB.

        Each distinct frame is decoded once; a repeated index returns a copy of that frame.

        Raises:
            VideoDecodeError: an index outside ``[0, num_frames)``, or the backend returned
                another frame than the one asked for. The message names file and index.
        """
        idx = np.asarray(indices)
        if idx.ndim != 1:
            idx = idx.reshape(-1)
        if idx.size == 0:
            raise VideoDecodeError(f"{self.path}: no frame indices requested")
        if not np.issubdtype(idx.dtype, np.integer):
            raise VideoDecodeError(f"{self.path}: frame indices must be integers, got {idx.dtype}")
        idx = idx.astype(np.int64)
        bad = idx[(idx < 0) | (idx >= self.num_frames)]
        if bad.size:
            raise VideoDecodeError(
                f"{self.path}: frame index {int(bad[0])} is out of range: the video has "
                f"{self.num_frames} frames (valid indices 0..{self.num_frames - 1})"
            )
        unique, inverse = np.unique(idx, return_inverse=True)
        frames = self._read_sorted(unique)  # (U, H, W, 3)
        if frames.shape[0] != unique.size or frames.ndim != 4 or frames.shape[-1] != 3:
            raise VideoDecodeError(
                f"{self.path}: {self.backend} returned frames of shape {frames.shape} "
                f"for {unique.size} requested frames"
            )
        if frames.dtype != np.uint8:
            raise VideoDecodeError(f"{self.path}: {self.backend} returned {frames.dtype} frames")
        return frames[inverse]

    @abstractmethod
    def _read_sorted(self, indices: np.ndarray) -> np.ndarray:
        """Decode ``indices`` (sorted, unique, in range) into ``(U, H, W, 3)`` uint8 RGB."""

    def close(self) -> None:
        """Release the decoder (idempotent)."""
        self.closed = True

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, num_frames={self.num_frames}, "
            f"counted_by={self.info.counted_by!r})"
        )


def _stack(path: str, frames: list[np.ndarray]) -> np.ndarray:
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise VideoDecodeError(f"{path}: frames change size within the video: {sorted(shapes)}")
    return np.stack(frames)


class PyAVReader(VideoReader):
    """PyAV: sequential decode from frame 0 with frame counting and timestamp checks.

    No seeking, so every frame up to the last one requested is decoded once; only the
    requested ones are converted to RGB. ``num_threads`` other than 1 enables FFmpeg's frame
    threading (0 = FFmpeg picks the thread count).
    """

    backend = "pyav"

    def _read_sorted(self, indices: np.ndarray) -> np.ndarray:
        wanted = [int(i) for i in indices]
        expected_pts = self.info.pts
        out: list[np.ndarray] = []
        pos = 0  # index of the next frame the decoder produces
        try:
            with av.open(self.path) as container:
                stream = container.streams.video[0]
                if self.num_threads != 1:
                    stream.thread_type = "AUTO"
                    stream.codec_context.thread_count = max(self.num_threads, 0)
                for frame in container.decode(stream):
                    if pos >= self.num_frames:
                        break
                    if (
                        expected_pts is not None
                        and frame.pts is not None
                        and frame.pts != expected_pts[pos]
                    ):
                        raise VideoDecodeError(
                            f"{self.path}: decoded frame {pos} has timestamp {frame.pts}, "
                            f"expected {expected_pts[pos]}: the decoder skipped or repeated "
                            "a frame"
                        )
                    if pos == wanted[len(out)]:
                        out.append(frame.to_ndarray(format="rgb24"))
                        if len(out) == len(wanted):
                            break
                    pos += 1
        except av.FFmpegError as err:
            raise VideoDecodeError(f"{self.path}: decoding failed at frame {pos} ({err})") from err
        if len(out) < len(wanted):
            raise VideoDecodeError(
                f"{self.path}: frame index {wanted[len(out)]} was requested but decoding ended "
                f"after {pos} frames (expected {self.num_frames})"
            )
        return _stack(self.path, out)


class OpenCVReader(VideoReader):
    """OpenCV (FFmpeg backend): sequential grab from frame 0, checking OpenCV's position.

    OpenCV's own frame count (``CAP_PROP_FRAME_COUNT``, kept as ``opencv_frames``) is not
    used: it can be one too high. ``num_threads`` is passed as ``CAP_PROP_N_THREADS``
    (0 = OpenCV's default).
    """

    backend = "opencv"

    def __init__(self, path: str | os.PathLike[str], num_threads: int = 1) -> None:
        super().__init__(path, num_threads)
        capture = self._open()
        self.opencv_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(
            self.path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, max(self.num_threads, 0)]
        )
        if not capture.isOpened():
            raise VideoDecodeError(f"{self.path}: OpenCV cannot open the file")
        return capture

    def _read_sorted(self, indices: np.ndarray) -> np.ndarray:
        capture = self._open()
        out: list[np.ndarray] = []
        pos = 0  # frames grabbed so far
        try:
            for target in (int(i) for i in indices):
                while pos <= target:
                    if not capture.grab():
                        raise VideoDecodeError(
                            f"{self.path}: frame index {target} was requested but OpenCV's "
                            f"decoding ended after {pos} frames (expected {self.num_frames})"
                        )
                    reported = int(round(capture.get(cv2.CAP_PROP_POS_FRAMES)))
                    if reported != pos + 1:
                        raise VideoDecodeError(
                            f"{self.path}: OpenCV is at position {reported} after grabbing "
                            f"frame {pos}: it skipped or repeated a frame"
                        )
                    pos += 1
                ok, bgr = capture.retrieve()
                if not ok or bgr is None:
                    raise VideoDecodeError(f"{self.path}: OpenCV failed to decode frame {target}")
                out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        finally:
            capture.release()
        return _stack(self.path, out)


class DecordReader(VideoReader):
    """decord, with its frame index checked against the stream when the reader opens.

    decord exposes no identity for a decoded frame, so the check is on its index: its length
    must be the true count (else it would serve repeated frames or hang, dmlc/decord#373) and
    its per-frame timestamps must match the stream's to within a quarter frame.
    ``num_threads`` is decord's (0 = auto).
    """

    backend = "decord"

    def __init__(self, path: str | os.PathLike[str], num_threads: int = 1) -> None:
        super().__init__(path, num_threads)
        try:
            import decord
        except ImportError as err:
            raise ImportError(
                "backend 'decord' needs the decord package (pip install decord; x86-64 only)"
            ) from err
        try:
            self._reader: Any = decord.VideoReader(
                self.path, ctx=decord.cpu(0), num_threads=num_threads
            )
        except (RuntimeError, decord.DECORDError) as err:
            raise VideoDecodeError(f"{self.path}: decord cannot open the file ({err})") from err
        self._check_index()

    def _check_index(self) -> None:
        length = len(self._reader)
        if length != self.num_frames:
            self.close()
            raise VideoDecodeError(
                f"{self.path}: decord indexes {length} frames but the stream has "
                f"{self.num_frames}; its frames would not match their indices "
                "(use backend 'pyav')"
            )
        expected = self.info.times()
        if expected is None:
            return
        stamps = np.asarray(self._reader.get_frame_timestamp(np.arange(length)))[:, 0]
        stamps = stamps.astype(np.float64) - float(stamps[0])
        frame_time = 1.0 / self.fps if self.fps > 0 else 1e-2
        off = np.flatnonzero(np.abs(stamps - expected) > frame_time / 4)
        if off.size:
            i = int(off[0])
            self.close()
            raise VideoDecodeError(
                f"{self.path}: decord places frame {i} at {stamps[i]:.4f} s but the stream "
                f"has it at {expected[i]:.4f} s; its frames would not match their indices "
                "(use backend 'pyav')"
            )

    def _read_sorted(self, indices: np.ndarray) -> np.ndarray:
        if self._reader is None:
            raise VideoDecodeError(f"{self.path}: the decord reader is closed")
        try:
            batch = self._reader.get_batch(indices)
        except Exception as err:  # decord raises DECORDError or RuntimeError
            raise VideoDecodeError(
                f"{self.path}: decord failed to decode frames {indices.tolist()} ({err})"
            ) from err
        array = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
        return np.ascontiguousarray(array)

    def close(self) -> None:
        self._reader = None
        super().close()


_READERS: dict[str, type[VideoReader]] = {
    "pyav": PyAVReader,
    "decord": DecordReader,
    "opencv": OpenCVReader,
}


def available_backends() -> tuple[str, ...]:
    """The backends usable in this environment (``decord`` only if it imports)."""
    names = ["pyav"]
    try:
        import decord  # noqa: F401
    except ImportError:
        pass
    else:
        names.append("decord")
    names.append("opencv")
    return tuple(names)


def open_video(
    path: str | os.PathLike[str], backend: str = "pyav", num_threads: int = 1
) -> VideoReader:
    """Open ``path`` with ``backend`` (one of :data:`BACKENDS`) for verified frame reads.

    Raises:
        ValueError: unknown backend.
        VideoDecodeError: missing, empty, corrupt or inconsistent file (message names it).
    """
    if backend not in _READERS:
        raise ValueError(f"unknown video backend {backend!r}; choose one of {BACKENDS}")
    return _READERS[backend](path, num_threads=num_threads)
