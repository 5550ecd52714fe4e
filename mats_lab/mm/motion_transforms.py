"""``CodecMotionVectors``: the codec's motion as a 4th channel of every frame, for the
``motion_vectors`` token scorer (``MATSVisionTransformer(scorer='motion_vectors')``).

Place it right after decoding (after :class:`~mats_lab.mm.transforms.CheckedVideoDecode`, or
after ``PixelDiffFrameSelect`` when that is used) and before any geometric transform::

    dict(type='CheckedVideoInit', backend='pyav'),
    dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=1),
    dict(type='CheckedVideoDecode'),
    dict(type='CodecMotionVectors'),            # H x W x 3 uint8 -> H x W x 4 float32
    dict(type='RandomResizedCrop', area_range=(0.6, 1.0)),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),  # (1, 4, T, H, W)
    dict(type='PackActionInputs'),

The frames become ``float32`` ``H x W x 4``: colour values unchanged (0..255), channel 3 the
motion magnitude in pixels of the original frame. ``float32`` rather than a scaled ``uint8``
keeps the map exact and is what OpenCV's resize/flip and mmaction's crops and
``FormatShape`` handle for any channel count (tested: ``Resize``, ``RandomResizedCrop``,
``CenterCrop``, ``ThreeCrop``, ``Flip``). A flip leaves magnitudes valid (they have no sign);
a resize does not rescale them, which is harmless for the scorer (it only ranks tokens).
Colour-only transforms must come before this one: ``VideoRandAugment`` refuses 4-channel
frames and mmaction's ``ColorJitter`` / ``Normalize`` expect 3.

The model's ``ActionDataPreprocessor`` then needs 4 means and stds; give the motion channel
mean 0 and std 1 so it reaches the scorer unchanged::

    mean=[123.675, 116.28, 103.53, 0.0], std=[58.395, 57.12, 57.375, 1.0]

The video is decoded a second time for its vectors (without colour conversion); frames are
checked to be the ones asked for, as in :mod:`mats_lab.data.decode`.
"""

from __future__ import annotations

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from mats_lab.data.motion_vectors import motion_magnitude

__all__ = ["CodecMotionVectors"]


@TRANSFORMS.register_module()
class CodecMotionVectors(BaseTransform):
    """Append the codec motion magnitude map of each decoded frame as a 4th channel.

    Required Keys:

        - filename
        - frame_inds (one per frame of ``imgs``, the indices the frames were decoded from)
        - imgs (list of ``H x W x 3`` frames at the video's own size)

    Modified Keys:

        - imgs (``H x W x 4`` float32: RGB 0..255, then motion magnitude in pixels)

    No arguments: the vectors pass decodes single-threaded (FFmpeg's frame threading makes
    exported vectors nondeterministic).

    Raises:
        VideoDecodeError: the file cannot be decoded, its codec exports no motion vectors
            (VP8/VP9/HEVC/AV1), or a frame is not the one asked for; the message names the
            file.
        ValueError: ``imgs`` and ``frame_inds`` disagree in number or size (the transform was
            placed after a resize or crop, or after a frame selection that did not update
            ``frame_inds``).
    """

    def __init__(self) -> None:
        # Explicit, so that a stray config key fails naming the key (TypeError).
        super().__init__()

    def transform(self, results: dict) -> dict:
        """Add the motion channel."""
        filename = results["filename"]
        imgs = results["imgs"]
        frame_inds = np.asarray(results["frame_inds"]).reshape(-1)
        if len(imgs) != frame_inds.size:
            raise ValueError(
                f"{filename}: {len(imgs)} imgs but {frame_inds.size} frame_inds; put "
                "CodecMotionVectors right after decoding / frame selection"
            )
        maps = motion_magnitude(filename, frame_inds)  # (n, H, W)
        out = []
        for i, img in enumerate(imgs):
            if img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(
                    f"{filename}: CodecMotionVectors needs H x W x 3 frames, got {img.shape}"
                )
            if img.shape[:2] != maps.shape[1:]:
                raise ValueError(
                    f"{filename}: frame {int(frame_inds[i])} is {img.shape[1]}x{img.shape[0]} "
                    f"but the video is {maps.shape[2]}x{maps.shape[1]}; put "
                    "CodecMotionVectors before any resize or crop"
                )
            out.append(np.concatenate([img.astype(np.float32), maps[i][:, :, None]], axis=2))
        results["imgs"] = out
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"
