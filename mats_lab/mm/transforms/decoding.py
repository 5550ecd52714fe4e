"""Verified decoding: :class:`CheckedVideoInit` opens a video and counts its frames,
:class:`CheckedVideoDecode` decodes the sampled indices and checks every frame."""

from __future__ import annotations

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from mats_lab.data.decode import BACKENDS, VideoReader, open_video

__all__ = ["CheckedVideoDecode", "CheckedVideoInit"]


@TRANSFORMS.register_module()
class CheckedVideoInit(BaseTransform):
    """Open a video with a verifying reader (:mod:`mats_lab.data.decode`).

    Unlike ``DecordInit`` / ``PyAVInit``, ``total_frames`` is the true number of frames (a
    container stating 0 or a wrong count is corrected by counting), so a sampler can never ask
    for frames that do not exist. Pair with :class:`CheckedVideoDecode`.

    Required Keys:

        - filename

    Added Keys:

        - video_reader
        - total_frames
        - avg_fps

    Args:
        backend (str): ``'auto'`` (the fastest backend exact for every file,
            :data:`mats_lab.data.decode.AUTO_BACKEND`), ``'pyav'``, ``'decord'`` or
            ``'opencv'``. Defaults to ``'auto'``.
        num_threads (int): decoder threads (0 = the library's choice). Defaults to 1.

    Raises:
        VideoDecodeError: missing, empty or corrupt file; the message names it.
    """

    def __init__(self, backend: str = "auto", num_threads: int = 1) -> None:
        if backend != "auto" and backend not in BACKENDS:
            raise ValueError(
                f"unknown video backend {backend!r}; choose 'auto' or one of {BACKENDS}"
            )
        self.backend = backend
        self.num_threads = num_threads

    def transform(self, results: dict) -> dict:
        """Open ``results['filename']``."""
        reader = open_video(results["filename"], self.backend, self.num_threads)
        results["video_reader"] = reader
        results["total_frames"] = reader.num_frames
        results["avg_fps"] = reader.fps
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(backend={self.backend!r}, num_threads={self.num_threads})"
        )


@TRANSFORMS.register_module()
class CheckedVideoDecode(BaseTransform):
    """Decode ``frame_inds`` with the reader of :class:`CheckedVideoInit`, then close it.

    Like mmaction's ``DecordDecode``, ``frame_inds`` are used as they are: the sampler has
    already added ``start_index`` (mmaction's ``SampleFrames`` and :class:`CandidateSampleFrames`
    both do), and a video's frames are numbered from 0. Every returned frame is verified to be
    the one asked for.

    Required Keys:

        - video_reader
        - frame_inds

    Added Keys:

        - imgs
        - original_shape
        - img_shape

    Modified Keys:

        - frame_inds (flattened to 1-D)
        - video_reader (closed and set to ``None``)

    Raises:
        VideoDecodeError: an index outside the video, or a frame the decoder got wrong; the
            message names the file and the index.
    """

    def __init__(self) -> None:
        # Explicit, so that a stray config key fails naming the key (TypeError).
        super().__init__()

    def transform(self, results: dict) -> dict:
        """Decode the frames."""
        reader: VideoReader | None = results.get("video_reader")
        if reader is None:
            raise KeyError(
                f"{results.get('filename', '<no filename>')}: no open 'video_reader' "
                "(put CheckedVideoInit before CheckedVideoDecode)"
            )
        frame_inds = np.asarray(results["frame_inds"]).reshape(-1)
        results["frame_inds"] = frame_inds
        try:
            frames = reader.get_frames(frame_inds)  # (n, H, W, 3) uint8 RGB
        finally:
            reader.close()
            results["video_reader"] = None
        results["imgs"] = list(frames)
        results["original_shape"] = frames.shape[1:3]
        results["img_shape"] = frames.shape[1:3]
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"
