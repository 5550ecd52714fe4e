"""Verified video decoding: the true frame count, and exactly the frames asked for.

Containers lie about their length (STACK.md item 9): PyAV reports 0 frames for many MKV and
WebM files, OpenCV's count can be one too high, and decord trusts the container's count and
may then return repeated frames or hang in native code when asked past the real end
(dmlc/decord#373). mmaction2's loaders pass such numbers straight to the frame sampler, so a
clip silently becomes 16 copies of frame 0. This module never does that:

* :func:`~mats_lab.data.probe.probe_video` establishes the true frame count, each frame's
  identifying timestamp (its ``pts``, or its ``dts`` for packed B-frame AVIs) and the
  keyframes; see :mod:`mats_lab.data.probe` for the identity rules.
* Every reader (:func:`open_video`, backends ``pyav``, ``decord``, ``opencv``; ``auto`` =
  :data:`AUTO_BACKEND`) reports that true count and checks the frames it returns:

  - ``pyav`` seeks to the keyframe before the first wanted frame and decodes forward,
    checking that the n-th decoded frame carries the n-th timestamp of the timeline (a
    skipped or repeated frame shows up as a mismatch);
  - ``opencv`` grabs sequentially, counting, and checks OpenCV's own frame position and, for
    ``pts``-timed streams, its frame time after every grab;
  - ``decord`` gives no per-frame identity: it reaches frame ``i`` by seeking to the
    keyframe before it and counting decoded frames. So its index is checked once, when the
    reader opens: its length and keyframes must be the stream's, and its timestamps must
    match the stream's (all of them where decord times every frame, else the keyframes').
    A decoder that drops a frame inside a GOP of a file whose packets look complete is
    caught by ``pyav`` and ``opencv`` but not by ``decord``. Frames are fetched with
    ``get_batch`` on sorted unique indices (repeated indices in one batch are known to give
    inconsistent results, dmlc/decord#195).

Anything wrong — a missing, empty or corrupt file, an index outside ``[0, num_frames)``, a
decoder that returns another frame than the one asked for — raises :class:`VideoDecodeError`
naming the file (and the frame index, where there is one).

Pure decoding: numpy, PyAV, OpenCV and (optional) decord; no torch, no mm*. Nothing is cached
between readers.

One file although it passes 400 lines: the three readers implement one contract (the same
identity checks against one probe, the same errors), and a reader is audited against the
others; the probe itself is :mod:`mats_lab.data.probe`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, ClassVar

import av
import cv2
import numpy as np

from mats_lab.data.probe import (
    StreamInfo,
    VideoDecodeError,
    frame_timestamp,
    open_container,
    probe_container,
    probe_video,
)

__all__ = [
    "BACKENDS",
    "DecordReader",
    "OpenCVReader",
    "PyAVReader",
    "StreamInfo",
    "VideoDecodeError",
    "VideoReader",
    "available_backends",
    "AUTO_BACKEND",
    "open_video",
    "probe_video",
]

BACKENDS: tuple[str, ...] = ("pyav", "decord", "opencv")


class VideoReader(ABC):
    """A video file opened for verified random access by frame index.

    Use as a context manager or call :meth:`close`. ``len(reader)`` is the true frame count.
    """

    backend: ClassVar[str]

    def __init__(
        self, path: str | os.PathLike[str], num_threads: int = 1, info: StreamInfo | None = None
    ) -> None:
        self.path = os.fspath(path)
        self.num_threads = num_threads
        self.closed = False
        self.info = probe_video(self.path) if info is None else info

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
                f"{self.num_frames} frames (valid indices 0..{self.num_frames - 1})",
                "index",
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
    """PyAV: seek to the keyframe before the first wanted frame, decode forward, check every
    frame's identity.

    A wanted frame at or after the current position, with no keyframe in between, is reached
    by decoding on; any other is reached by seeking to the last keyframe at or before it.
    After a seek the first decoded frame must be a keyframe whose timestamp is on the
    timeline (that fixes the position); otherwise, and for streams without timestamps, the
    file is decoded from its first frame. Every decoded frame's timestamp must then be the
    timeline's for its position (:mod:`mats_lab.data.probe`), so a skipped or repeated frame
    raises. Only requested frames are converted to RGB. The container stays open until
    :meth:`close`. ``num_threads`` other than 1 enables FFmpeg's frame threading (0 = FFmpeg
    picks the thread count).
    """

    backend = "pyav"

    def __init__(
        self, path: str | os.PathLike[str], num_threads: int = 1, info: StreamInfo | None = None
    ) -> None:
        self._container: Any = None
        if info is None:  # probe through the container this reader then decodes from
            path = os.fspath(path)
            container = open_container(path)
            try:
                info = probe_container(container, path)
            except BaseException:
                container.close()
                raise
            try:
                container.seek(0)
            except av.FFmpegError:
                container.close()  # reopened on the first read
            else:
                self._container = container
        super().__init__(path, num_threads, info)
        self._frames: Iterator[Any] | None = None
        self._pending: Any = None  # a frame decoded but not yet consumed
        self._pos = 0  # index of the next frame the decoder yields
        self.seeks = 0  # seeks done (for tests and benchmarks)
        if self._container is not None:
            self._start_decoding()

    def _open(self) -> None:
        if self._container is not None:
            self._container.close()
        try:
            self._container = av.open(self.path)
        except av.FFmpegError as err:
            raise VideoDecodeError(f"{self.path}: cannot open the file ({err})") from err
        self._start_decoding()

    def _start_decoding(self) -> None:
        """Set the decoder's threads and decode from the container's current position."""
        stream = self._container.streams.video[0]
        if self.num_threads == 1:  # PyAV's default would be several slice threads
            stream.thread_type = "NONE"
            stream.codec_context.thread_count = 1
        else:
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = max(self.num_threads, 0)
        self._frames = self._container.decode(stream)
        self._pending = None
        self._pos = 0

    def _next_frame(self) -> Any:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        assert self._frames is not None
        return next(self._frames, None)

    def _seek(self, target: int) -> None:
        """Position the decoder at or before ``target``, at a keyframe."""
        key = self.info.keyframe_before(target)
        if key == 0 or self.info.pts is None:
            self._open()
            return
        stream = self._container.streams.video[0]
        self._container.seek(self.info.pts[key], stream=stream, backward=True)
        self.seeks += 1
        self._frames = self._container.decode(stream)
        first = next(self._frames, None)
        stamp = None if first is None else frame_timestamp(first, self.info)
        landed = None if stamp is None else self.info.index_of(stamp)
        if first is None or not first.key_frame or landed is None or landed > target:
            self._open()  # an imprecise index: decode from the start instead
            return
        self._pending = first
        self._pos = landed

    def _read_sorted(self, indices: np.ndarray) -> np.ndarray:
        info = self.info
        out: list[np.ndarray] = []
        try:
            if self._container is None:
                self._open()
            for target in (int(i) for i in indices):
                if target < self._pos or info.keyframe_before(target) > self._pos:
                    self._seek(target)
                while True:
                    frame = self._next_frame()
                    if frame is None:
                        raise VideoDecodeError(
                            f"{self.path}: frame index {target} was requested but decoding "
                            f"ended after {self._pos} frames (expected {self.num_frames})",
                            "truncated",
                        )
                    self._check_identity(frame)
                    self._pos += 1
                    if self._pos - 1 == target:
                        out.append(frame.to_ndarray(format="rgb24"))
                        break
        except av.FFmpegError as err:
            raise VideoDecodeError(
                f"{self.path}: decoding failed at frame {self._pos} ({err})", "truncated"
            ) from err
        return _stack(self.path, out)

    def _check_identity(self, frame: Any) -> None:
        pos, info = self._pos, self.info
        if pos >= info.num_frames:
            raise VideoDecodeError(
                f"{self.path}: the decoder yields a frame {pos} beyond the stream's "
                f"{info.num_frames}: it repeated a frame",
                "frame-identity",
            )
        stamp = frame_timestamp(frame, info)
        if info.pts is not None and stamp is not None and stamp != info.pts[pos]:
            raise VideoDecodeError(
                f"{self.path}: decoded frame {pos} has timestamp {stamp}, expected "
                f"{info.pts[pos]} ({info.ts_source}): the decoder skipped or repeated a frame",
                "frame-identity",
            )

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None
        self._pending = None
        super().close()


class OpenCVReader(VideoReader):
    """OpenCV (FFmpeg backend): sequential grab from frame 0, checking OpenCV's position.

    OpenCV's own frame count (``CAP_PROP_FRAME_COUNT``, kept as ``opencv_frames``) is not
    used: it can be one too high. ``num_threads`` is passed as ``CAP_PROP_N_THREADS``
    (0 = OpenCV's default).
    """

    backend = "opencv"

    def __init__(
        self, path: str | os.PathLike[str], num_threads: int = 1, info: StreamInfo | None = None
    ) -> None:
        super().__init__(path, num_threads, info)
        capture = self._open()
        self.opencv_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._times = self.info.times() if self.info.ts_source == "pts" else None
        self._start = 0.0
        capture.release()

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(
            self.path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, max(self.num_threads, 0)]
        )
        if not capture.isOpened():
            raise VideoDecodeError(f"{self.path}: OpenCV cannot open the file")
        return capture

    def _check_time(self, pos: int, seconds: float) -> None:
        """OpenCV's time of frame ``pos``, relative to its frame 0, must be the timeline's
        (``pts``-timed streams; OpenCV times frames from their best-effort timestamps)."""
        if self._times is None:
            return
        if pos == 0:
            self._start = seconds  # OpenCV's origin can differ from frame 0's time
        elif seconds < self._start:
            return  # a frame flushed out at the end has no timestamp: its position is checked
        seconds -= self._start
        frame_time = 1.0 / self.fps if self.fps > 0 else 1e-2
        if abs(seconds - self._times[pos]) > frame_time / 4:
            raise VideoDecodeError(
                f"{self.path}: OpenCV's frame {pos} is at {seconds:.4f} s but the stream has "
                f"it at {self._times[pos]:.4f} s: the decoder skipped or repeated a frame",
                "frame-identity",
            )

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
                            f"decoding ended after {pos} frames (expected {self.num_frames})",
                            "truncated",
                        )
                    reported = int(round(capture.get(cv2.CAP_PROP_POS_FRAMES)))
                    if reported != pos + 1:
                        raise VideoDecodeError(
                            f"{self.path}: OpenCV is at position {reported} after grabbing "
                            f"frame {pos}: it skipped or repeated a frame",
                            "frame-identity",
                        )
                    self._check_time(pos, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
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

    def __init__(
        self, path: str | os.PathLike[str], num_threads: int = 1, info: StreamInfo | None = None
    ) -> None:
        super().__init__(path, num_threads, info)
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
        try:
            self._verify_index()
        except VideoDecodeError:
            self.close()
            raise

    def _verify_index(self) -> None:
        """decord reaches frame ``i`` by seeking to its keyframe's timestamp and counting
        decoded frames from there, so those are what must match the stream."""
        length = len(self._reader)
        if length != self.num_frames:
            raise VideoDecodeError(
                f"{self.path}: decord indexes {length} frames but the stream has "
                f"{self.num_frames}; its frames would not match their indices "
                "(use backend 'pyav')"
            )
        keys = tuple(int(k) for k in self._reader.get_key_indices())
        if keys != self.info.keyframes:
            raise VideoDecodeError(
                f"{self.path}: decord has keyframes {_short(keys)} but the stream has "
                f"{_short(self.info.keyframes)}; it would count frames from the wrong keyframe "
                "(use backend 'pyav')"
            )
        expected = self.info.times()
        if expected is None:
            return
        stamps = np.asarray(self._reader.get_frame_timestamp(np.arange(length)))[:, 0]
        stamps = stamps.astype(np.float64)
        timed = stamps > _DECORD_NO_TIME
        if timed.all():  # decord's whole index is timed: it must be the stream's
            check = np.arange(length)
        else:  # untimed frames (packed B-frames): only the seek points matter
            if not timed[list(self.info.keyframes[1:])].all():
                raise VideoDecodeError(
                    f"{self.path}: decord has no timestamp for some keyframes, so cannot "
                    "seek to them (use backend 'pyav')"
                )
            check = np.asarray(self.info.keyframes[1:], dtype=np.int64)
        if check.size == 0 or not timed[0]:
            return
        relative = stamps - stamps[0]
        frame_time = 1.0 / self.fps if self.fps > 0 else 1e-2
        off = check[np.abs(relative[check] - expected[check]) > frame_time / 4]
        if off.size:
            i = int(off[0])
            raise VideoDecodeError(
                f"{self.path}: decord places frame {i} at {relative[i]:.4f} s but the stream "
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


# decord reports a frame without a timestamp as about -3.7e17 s (AV_NOPTS_VALUE scaled).
_DECORD_NO_TIME = -1e15


def _short(values: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}] ({len(values)})"


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


# What backend='auto' opens: the fastest backend that is exact for every file it accepts.
# PyAV with keyframe seeking checks every decoded frame's identity and was measured at least
# as fast as MMAction2's decord pipeline per worker (benchmarks/README.md, "Decoding real
# datasets"); decord cannot check a frame (it counts frames from a keyframe, so a decoder
# that drops a frame inside a GOP shifts the rest unnoticed), so it is never chosen for you.
AUTO_BACKEND = "pyav"


def open_video(
    path: str | os.PathLike[str],
    backend: str = "auto",
    num_threads: int = 1,
    info: StreamInfo | None = None,
) -> VideoReader:
    """Open ``path`` with ``backend`` (``'auto'`` or one of :data:`BACKENDS`) for verified
    frame reads. ``info``: the file's :func:`probe_video` result, when already known.

    Raises:
        ValueError: unknown backend.
        VideoDecodeError: missing, empty, corrupt or inconsistent file (message names it).
    """
    if backend == "auto":
        backend = AUTO_BACKEND
    if backend not in _READERS:
        raise ValueError(f"unknown video backend {backend!r}; choose 'auto' or one of {BACKENDS}")
    return _READERS[backend](path, num_threads=num_threads, info=info)
