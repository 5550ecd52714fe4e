"""What a video's first stream really holds: its frames, their identity, its keyframes.

A decoded frame's identity is decided by what the decoder guarantees, not by what a container
happens to state:

* **output order** — a decoder returns frames in presentation order, so the n-th frame it
  outputs (from the start, or from a keyframe whose index is known) is frame n;
* **best-effort timestamps** — each frame carries a timestamp from one *source*, chosen per
  stream: its ``pts`` when they increase strictly over the stream, else its packet ``dts``
  when those do and step evenly (MPEG-4 Part 2 AVIs with packed B-frames, the encoding of
  UCF101 and HMDB51, decode in the right order with *permuted* ``pts`` 1, 2, 4, 3, 5, 7, 6, …,
  while their ``dts`` count 1, 2, 3, …), else none (identity by counting alone);
* **the stream's real frame rate** — a ``dts``-timed stream has one packet per frame tick, so
  a gap of more than one tick is a frame the decoder skipped.

:func:`probe_video` establishes the timeline (the timestamp of frame ``0 .. N-1``) cheaply from
the demuxed packets when they are self-consistent (every packet timed, distinct timestamps, as
many as the container states), and by decoding the stream once otherwise. A timeline whose
timestamps repeat is a decoder repeating a frame, and the file is refused. Readers then check
every frame they decode against the timeline: a skipped or repeated frame shows up as a
timestamp mismatch. Variable frame rates, edit lists (packets the demuxer marks as discarded
are not frames) and non-zero start times need nothing special: only the order of timestamps
and their equality are used, and :meth:`StreamInfo.times` is relative to frame 0.

Pure PyAV and numpy.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

__all__ = ["StreamInfo", "VideoDecodeError", "frame_timestamp", "probe_video"]

# Sources of a frame's timestamp (StreamInfo.ts_source).
TS_SOURCES = ("pts", "dts", "none")


class VideoDecodeError(RuntimeError):
    """A video could not be decoded into exactly the frames asked for.

    ``kind`` says why, for reports (``mats-lab data check``): ``"missing"``, ``"empty"``,
    ``"unreadable"`` (not a video, or damaged beyond opening), ``"zero-frame"``,
    ``"truncated"`` (the stream breaks off), ``"frame-identity"`` (the decoder skipped or
    repeated a frame), ``"index"`` (a frame index outside the video) or ``"decoder"``
    (anything else a backend got wrong).
    """

    def __init__(self, message: str, kind: str = "decoder") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class StreamInfo:
    """What :func:`probe_video` established about a file's first video stream.

    Attributes:
        path: the file.
        num_frames: the true number of decodable frames.
        container_frames: the count the container states (0 = it states none).
        counted_by: ``"container"`` (the packets confirm the container's count) or
            ``"decoding"`` (frames were decoded and counted).
        fps: average frame rate (0.0 when the container states none).
        height: frame height in pixels.
        width: frame width in pixels.
        pts: the timeline: timestamp of frame ``0 .. num_frames - 1`` in ``time_base`` units,
            taken from ``ts_source``; ``None`` when the stream has no usable timestamps
            (identity by counting alone, and no seeking).
        time_base: unit of ``pts`` in seconds.
        ts_source: ``"pts"``, ``"dts"`` or ``"none"``: which timestamp of a decoded frame
            identifies it (see the module docstring).
        keyframes: indices of the keyframes (sorted; the seek points).
        codec: the decoder's name (``"h264"``, ``"mpeg4"``, ...).
        container_duration_s: the duration the container states, in seconds (0.0 = none).
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
    ts_source: str = "pts"
    keyframes: tuple[int, ...] = (0,)
    codec: str = ""
    container_duration_s: float = 0.0

    def times(self) -> np.ndarray | None:
        """Presentation times in seconds relative to frame 0, ``(num_frames,)`` float64."""
        if self.pts is None:
            return None
        pts = np.asarray(self.pts, dtype=np.float64)
        return (pts - pts[0]) * float(self.time_base)

    def duration_s(self) -> float:
        """Seconds from the first frame to the end of the last (0.0 when unknown)."""
        times = self.times()
        if times is not None and self.num_frames > 1:
            step = float(np.median(np.diff(times)))
            return float(times[-1]) + step
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    def keyframe_before(self, index: int) -> int:
        """The last keyframe at or before frame ``index`` (0 when none is known)."""
        at = bisect.bisect_right(self.keyframes, index) - 1
        return self.keyframes[at] if at >= 0 else 0

    def index_of(self, timestamp: int) -> int | None:
        """The frame whose timeline timestamp is ``timestamp`` (``None``: no such frame)."""
        if self.pts is None:
            return None
        at = bisect.bisect_left(self.pts, timestamp)
        return at if at < len(self.pts) and self.pts[at] == timestamp else None


def frame_timestamp(frame: Any, info: StreamInfo) -> int | None:
    """The identifying timestamp of a decoded PyAV ``frame`` under ``info.ts_source``."""
    if info.ts_source == "pts":
        return frame.pts
    if info.ts_source == "dts":
        return frame.dts
    return None


def _open_error_kind(path: str, err: Exception) -> str:
    """``"truncated"`` for an MP4 / MOV cut short (its top-level boxes run past the end of
    the file, or its index, ``moov``, is missing), else ``"unreadable"``."""
    if "moov atom not found" in str(err):
        return "truncated"
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        if handle.read(12)[4:8] != b"ftyp":
            return "unreadable"
        offset, boxes = 0, set()
        while offset + 8 <= size:
            handle.seek(offset)
            header = handle.read(16)
            length, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if length == 1 and len(header) == 16:
                length = int.from_bytes(header[8:16], "big")
            if length < 8:
                break
            boxes.add(kind)
            offset += length
    return "truncated" if offset > size or b"moov" not in boxes else "unreadable"


def check_file(path: str) -> None:
    """Raise :class:`VideoDecodeError` for a missing, non-regular or empty file."""
    if not os.path.exists(path):
        raise VideoDecodeError(f"{path}: no such file", "missing")
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: not a regular file", "unreadable")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"{path}: empty file (0 bytes)", "empty")


# Containers that store no presentation timestamps: FFmpeg's demuxer derives them.
_NO_STORED_PTS = frozenset({"avi", "h264", "hevc", "m4v", "mpegvideo", "h263"})


def _container_frame_count(stream: Any) -> int:
    """The frame count the container states for ``stream`` (0 = none). Patched in tests."""
    return int(stream.frames or 0)


def _strictly_increasing(values: list[int]) -> bool:
    return all(b > a for a, b in zip(values, values[1:], strict=False))


@dataclass(frozen=True)
class _Timeline:
    pts: tuple[int, ...] | None
    source: str
    keyframes: tuple[int, ...]


def _timeline_from_packets(
    packets: list[tuple[int | None, bool]], container_frames: int
) -> _Timeline | None:
    """The timeline from demuxed ``(pts, is_keyframe)`` packets, or ``None`` when they do not
    establish it (count unconfirmed, a packet untimed, timestamps repeating)."""
    if container_frames <= 0 or container_frames != len(packets):
        return None
    stamps = [p for p, _ in packets]
    if any(p is None for p in stamps):
        return None
    ordered = sorted(int(p) for p in stamps if p is not None)
    if not _strictly_increasing(ordered):
        return None
    position = {p: i for i, p in enumerate(ordered)}
    keys = sorted(position[int(p)] for p, key in packets if key and p is not None)
    return _Timeline(tuple(ordered), "pts", tuple(keys) or (0,))


def _is_even(values: list[int]) -> bool:
    steps = np.diff(np.asarray(values, dtype=np.int64))
    return steps.size == 0 or bool(np.all(steps == steps.min()))


def _fill_flushed(dts: list[int | None], most: int = 4) -> list[int | None]:
    """Frames the decoder outputs when flushed at the end have no packet ``dts``: give the
    last ``most`` such frames the next ticks (their identity is then their position)."""
    known = len(dts)
    while known > 0 and dts[known - 1] is None:
        known -= 1
    if known == len(dts) or len(dts) - known > most or known < 2:
        return dts
    head = [d for d in dts[:known] if d is not None]
    if len(head) != known:
        return dts
    step = head[-1] - head[-2]
    return [*head, *(head[-1] + step * (i + 1) for i in range(len(dts) - known))]


def _timeline_from_frames(
    path: str, frames: list[tuple[int | None, int | None, bool]]
) -> _Timeline:
    """Choose the timestamp source from decoded ``(pts, dts, key_frame)`` frames (output order).

    Raises:
        VideoDecodeError: timestamps that repeat (a repeated frame) or, for a ``dts``-timed
            stream, skip a tick (a skipped frame).
    """
    keys = tuple(i for i, (_, _, key) in enumerate(frames) if key) or (0,)
    pts = [f[0] for f in frames]
    dts = [f[1] for f in frames]
    if all(p is not None for p in pts):
        pts_i = [int(p) for p in pts if p is not None]
        if _strictly_increasing(pts_i):
            return _Timeline(tuple(pts_i), "pts", keys)
    dts = _fill_flushed(dts)
    if all(d is not None for d in dts):
        dts_i = [int(d) for d in dts if d is not None]
        if _strictly_increasing(dts_i):
            if not _is_even(dts_i):
                steps = np.diff(dts_i)
                at = int(np.flatnonzero(steps != steps.min())[0]) + 1
                raise VideoDecodeError(
                    f"{path}: decoded frame {at} is {int(steps[at - 1] // steps.min())} frame "
                    f"ticks after frame {at - 1} in a stream timed by its packets: the decoder "
                    "skipped a frame",
                    "frame-identity",
                )
            return _Timeline(tuple(dts_i), "dts", keys)
    if all(p is not None for p in pts):
        first: dict[int, int] = {}
        for i, p in enumerate(pts):
            if p in first:
                raise VideoDecodeError(
                    f"{path}: decoded frames {first[p]} and {i} have the same timestamp {p}: "
                    "the decoder repeated a frame",
                    "frame-identity",
                )
            first[int(p)] = i  # type: ignore[arg-type]
    return _Timeline(None, "none", keys)


def _check_every_packet_decoded(
    path: str, packets: list[tuple[int | None, bool]], timeline: _Timeline
) -> None:
    """In a container that stores presentation timestamps, each timed packet is one frame:
    a packet timestamp no decoded frame carries is a frame the decoder skipped."""
    decoded = set(timeline.pts or ())
    missing = sorted(int(p) for p, _ in packets if p is not None and p not in decoded)
    if missing:
        raise VideoDecodeError(
            f"{path}: the stream has a frame at timestamp {missing[0]} but the decoder output "
            f"none ({len(missing)} such): it skipped a frame",
            "frame-identity",
        )


def probe_video(path: str | os.PathLike[str]) -> StreamInfo:
    """Establish the true frame count, the timeline and the keyframes of ``path``'s first
    video stream.

    Demuxes the whole file (cheap: no decoding). When the container's count is missing or
    disagrees with the number of video packets, or packet timestamps are missing or repeat,
    decodes the stream once and takes the frames' own timestamps instead.

    Raises:
        VideoDecodeError: missing, empty or unreadable file, no video stream, no frames, or
            a stream whose decoder repeats or skips a frame. The message names the file.
    """
    path = os.fspath(path)
    with open_container(path) as container:
        return probe_container(container, path)


def open_container(path: str) -> Any:
    """``av.open(path)`` after :func:`check_file`, failures as :class:`VideoDecodeError`."""
    check_file(path)
    try:
        return av.open(path)
    except av.FFmpegError as err:
        raise VideoDecodeError(
            f"{path}: cannot read the file as a video ({err})", _open_error_kind(path, err)
        ) from err


def probe_container(container: Any, path: str) -> StreamInfo:
    """:func:`probe_video` on an open PyAV input ``container`` of ``path``; demuxes it to
    the end (seek back before decoding from it)."""
    try:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream", "unreadable")
        stream = container.streams.video[0]
        container_frames = _container_frame_count(stream)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        time_base = stream.time_base or Fraction(1, 1)
        height, width = stream.codec_context.height, stream.codec_context.width
        codec = stream.codec_context.name
        stated = container.duration  # microseconds, or None
        container_duration_s = float(stated) / 1e6 if stated and stated > 0 else 0.0
        stored_pts = not set(container.format.name.split(",")) & _NO_STORED_PTS
        packets: list[tuple[int | None, bool]] = []
        try:
            for p in container.demux(stream):
                if p.size > 0 and not p.is_discard:
                    packets.append((p.pts, bool(p.is_keyframe)))
        except av.FFmpegError as err:
            if not packets:
                raise
            raise VideoDecodeError(
                f"{path}: the stream breaks off after {len(packets)} packets ({err})",
                "truncated",
            ) from err
    except av.FFmpegError as err:
        raise VideoDecodeError(
            f"{path}: cannot read the file as a video ({err})", _open_error_kind(path, err)
        ) from err

    in_order = _strictly_increasing([int(p) for p, _ in packets if p is not None])
    # Without stored presentation timestamps (AVI) the demuxer invents them, and with
    # reordered (e.g. packed B-) frames they are not the decoded frames' own.
    usable = stored_pts or in_order
    timeline = _timeline_from_packets(packets, container_frames) if usable else None
    counted_by = "container"
    num_frames = container_frames
    if timeline is None:
        counted_by = "decoding"
        frames = _decode_frame_stamps(path)
        num_frames = len(frames)
        if num_frames == 0:
            raise VideoDecodeError(
                f"{path}: the video stream has no decodable frames", "zero-frame"
            )
        timeline = _timeline_from_frames(path, frames)
        if timeline.source == "pts" and stored_pts:
            _check_every_packet_decoded(path, packets, timeline)
    return StreamInfo(
        path=path,
        num_frames=num_frames,
        container_frames=container_frames,
        counted_by=counted_by,
        fps=fps,
        height=height,
        width=width,
        pts=timeline.pts,
        time_base=Fraction(time_base),
        ts_source=timeline.source,
        keyframes=timeline.keyframes,
        codec=codec,
        container_duration_s=container_duration_s,
    )


def _decode_frame_stamps(path: str) -> list[tuple[int | None, int | None, bool]]:
    """``(pts, dts, key_frame)`` of every decoded frame, in output order."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            # Single-threaded like PyAVReader's default, so that a stream that breaks off
            # mid-way breaks off at the same frame in both.
            return [(f.pts, f.dts, bool(f.key_frame)) for f in container.decode(stream)]
    except av.FFmpegError as err:
        raise VideoDecodeError(
            f"{path}: decoding failed while counting frames ({err})", "truncated"
        ) from err
