"""Codec motion vectors as a free motion signal: per-pixel motion magnitude maps.

An H.264 (or MPEG-4 / MPEG-2 ...) stream already stores, for every inter-coded block, the
displacement to its reference block. FFmpeg exports these vectors as ``MOTION_VECTORS`` frame
side data when the decoder runs with ``flags2=+export_mvs``; PyAV 18 hands them out as
``frame.side_data.get('MOTION_VECTORS').to_ndarray()``, a structured array with FFmpeg's
``AVMotionVector`` fields (``source, w, h, src_x, src_y, dst_x, dst_y, flags, motion_x,
motion_y, motion_scale``). This module turns them into ``(H, W) float32`` maps:

* each vector covers the ``w x h`` block **centred** on ``(dst_x, dst_y)`` (FFmpeg stores the
  block centre: a 16x16 macroblock at column ``mb_x`` has ``dst_x = 16 * mb_x + 8``);
* its magnitude is ``hypot(motion_x, motion_y) / motion_scale`` pixels — the displacement to
  the reference frame, which for B-frames or several reference frames can be more than one
  frame away (the side data does not say how far);
* where vectors overlap (a B-frame block has one per direction), the larger magnitude wins,
  so the result does not depend on the order of the vectors;
* I-frames, intra-coded blocks and frames without side data are zero.

Only decoders built on FFmpeg's mpegvideo/H.264 code export vectors (:data:`MV_CODECS`,
checked with FFmpeg 8.1 via PyAV 18.1). VP8/VP9 (Something-Something v2's WebM), HEVC and AV1
decode fine but export nothing; reading them raises :class:`VideoDecodeError` rather than
returning all-zero maps that would make a motion-vector scorer silently random.

Decoding is single-threaded: with FFmpeg's frame threading the vectors exported for some
frames change from run to run. Frame identity is checked as in :mod:`mats_lab.data.decode`:
the true frame count and timestamps come from :func:`probe_video`, the stream is decoded
sequentially from frame 0 and the n-th decoded frame must carry the n-th timestamp. Every
error names the file.

Pure: numpy and PyAV; no torch, no mm*.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import av
import numpy as np

from mats_lab.data.decode import StreamInfo, VideoDecodeError, probe_video
from mats_lab.data.probe import frame_timestamp

__all__ = [
    "MV_CODECS",
    "MV_DTYPE",
    "motion_magnitude",
    "read_motion_vectors",
    "render_magnitude",
]

# Decoder names (``stream.codec_context.name``) that export motion vectors. Each was checked
# by encoding a moving square with PyAV 18.1 / FFmpeg 8.1 and decoding with export_mvs.
MV_CODECS: frozenset[str] = frozenset(
    {"h264", "mpeg4", "mpeg1video", "mpeg2video", "h263", "flv", "msmpeg4", "wmv2"}
)

# FFmpeg's AVMotionVector as PyAV's ``MotionVectors.to_ndarray()`` returns it (aligned, 40 B).
MV_DTYPE = np.dtype(
    {
        "names": [
            "source",
            "w",
            "h",
            "src_x",
            "src_y",
            "dst_x",
            "dst_y",
            "flags",
            "motion_x",
            "motion_y",
            "motion_scale",
        ],
        "formats": ["<i4", "u1", "u1", "<i2", "<i2", "<i2", "<i2", "<u8", "<i4", "<i4", "<u2"],
        "offsets": [0, 4, 5, 6, 8, 10, 12, 16, 24, 28, 32],
        "itemsize": 40,
        "aligned": True,
    }
)


def render_magnitude(vectors: np.ndarray, height: int, width: int) -> np.ndarray:
    """Paint motion vectors into an ``(height, width) float32`` magnitude map.

    Args:
        vectors: structured array with at least the fields ``w, h, dst_x, dst_y, motion_x,
            motion_y, motion_scale`` (:data:`MV_DTYPE`); may be empty.

    Returns:
        ``|(motion_x, motion_y)| / motion_scale`` on each vector's ``w x h`` block centred on
        ``(dst_x, dst_y)``, the maximum where blocks overlap, 0 elsewhere. Parts of blocks
        outside the frame are dropped; vectors with ``motion_scale == 0`` are ignored.
    """
    out = np.zeros((height, width), np.float32)
    if vectors.size == 0:
        return out
    scale = vectors["motion_scale"].astype(np.float32)
    valid = scale > 0
    if not valid.any():
        return out
    vectors, scale = vectors[valid], scale[valid]
    magnitude = (
        np.hypot(vectors["motion_x"].astype(np.float32), vectors["motion_y"].astype(np.float32))
        / scale
    )  # (n,)
    block_w = vectors["w"].astype(np.int64)
    block_h = vectors["h"].astype(np.int64)
    x0 = vectors["dst_x"].astype(np.int64) - block_w // 2
    y0 = vectors["dst_y"].astype(np.int64) - block_h // 2
    flat = out.reshape(-1)
    # One vectorised scatter per block size (a frame has only a handful of sizes).
    for bw, bh in {(int(a), int(b)) for a, b in zip(block_w, block_h, strict=True)}:
        sel = (block_w == bw) & (block_h == bh)
        ys = y0[sel, None, None] + np.arange(bh)[None, :, None]  # (m, bh, 1)
        xs = x0[sel, None, None] + np.arange(bw)[None, None, :]  # (m, 1, bw)
        ys, xs = np.broadcast_arrays(ys, xs)  # (m, bh, bw)
        mags = np.broadcast_to(magnitude[sel, None, None], ys.shape)
        inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
        np.maximum.at(flat, ys[inside] * width + xs[inside], mags[inside])
    return out


def _check_indices(path: str, indices: Sequence[int] | np.ndarray, num_frames: int) -> np.ndarray:
    idx = np.asarray(indices).reshape(-1)
    if idx.size == 0:
        raise VideoDecodeError(f"{path}: no frame indices requested")
    if not np.issubdtype(idx.dtype, np.integer):
        raise VideoDecodeError(f"{path}: frame indices must be integers, got {idx.dtype}")
    idx = idx.astype(np.int64)
    bad = idx[(idx < 0) | (idx >= num_frames)]
    if bad.size:
        raise VideoDecodeError(
            f"{path}: frame index {int(bad[0])} is out of range: the video has {num_frames} "
            f"frames (valid indices 0..{num_frames - 1})"
        )
    return idx


def _decode_vectors(path: str, info: StreamInfo, wanted: list[int]) -> list[np.ndarray]:
    """Vectors of the sorted unique frame indices ``wanted``, decoding from frame 0."""
    out: list[np.ndarray] = []
    pos = 0  # index of the next frame the decoder produces
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            if codec not in MV_CODECS:
                raise VideoDecodeError(
                    f"{path}: codec {codec!r} exports no motion vectors (FFmpeg exports them "
                    f"for {', '.join(sorted(MV_CODECS))}); re-encode the video, e.g. "
                    "ffmpeg -i in.webm -c:v libx264 out.mp4"
                )
            # Must be set before the first packet opens the decoder. Single-threaded on
            # purpose: with FFmpeg's frame threading the exported vectors of some frames
            # differ from run to run (seen on demo.mp4 with 2 and with auto threads).
            stream.codec_context.options = {"flags2": "+export_mvs", "threads": "1"}
            for frame in container.decode(stream):
                if pos >= info.num_frames:
                    break
                stamp = frame_timestamp(frame, info)
                if info.pts is not None and stamp is not None and stamp != info.pts[pos]:
                    raise VideoDecodeError(
                        f"{path}: decoded frame {pos} has timestamp {stamp}, expected "
                        f"{info.pts[pos]}: the decoder skipped or repeated a frame"
                    )
                if pos == wanted[len(out)]:
                    if (frame.height, frame.width) != (info.height, info.width):
                        raise VideoDecodeError(
                            f"{path}: frame {pos} is {frame.width}x{frame.height}, the stream "
                            f"is {info.width}x{info.height}"
                        )
                    side = frame.side_data.get("MOTION_VECTORS")
                    vectors = (
                        np.zeros(0, MV_DTYPE) if side is None else np.asarray(side.to_ndarray())
                    )
                    out.append(vectors)
                    if len(out) == len(wanted):
                        break
                pos += 1
    except av.FFmpegError as err:
        raise VideoDecodeError(f"{path}: decoding failed at frame {pos} ({err})") from err
    if len(out) < len(wanted):
        raise VideoDecodeError(
            f"{path}: frame index {wanted[len(out)]} was requested but decoding ended after "
            f"{pos} frames (expected {info.num_frames})"
        )
    return out


def read_motion_vectors(
    path: str | os.PathLike[str], indices: Sequence[int] | np.ndarray
) -> tuple[list[np.ndarray], tuple[int, int]]:
    """The raw motion vectors of frames ``indices`` (any order, repeats allowed).

    Returns:
        ``(vectors, (H, W))``: one structured array (:data:`MV_DTYPE` fields) per requested
        index, empty for I-frames and frames without vectors; and the frame size.

    Raises:
        VideoDecodeError: missing, empty or corrupt file, a codec that exports no vectors, an
            index outside the video, or a decoder that skipped or repeated a frame. The message
            names the file.
    """
    path = os.fspath(path)
    info = probe_video(path)
    idx = _check_indices(path, indices, info.num_frames)
    unique, inverse = np.unique(idx, return_inverse=True)
    vectors = _decode_vectors(path, info, [int(i) for i in unique])
    return [vectors[int(i)] for i in inverse.reshape(-1)], (info.height, info.width)


def motion_magnitude(
    path: str | os.PathLike[str], indices: Sequence[int] | np.ndarray
) -> np.ndarray:
    """Per-pixel codec motion magnitude of frames ``indices``: ``(n, H, W) float32`` pixels.

    See :func:`render_magnitude` for how vectors become a map, :func:`read_motion_vectors`
    for the errors.
    """
    vectors, (height, width) = read_motion_vectors(path, indices)
    cache: dict[int, np.ndarray] = {}
    maps = []
    for v in vectors:  # repeated indices share one array: render each once
        key = id(v)
        if key not in cache:
            cache[key] = render_magnitude(v, height, width)
        maps.append(cache[key])
    return np.stack(maps)
