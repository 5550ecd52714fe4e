"""RandAugment's image ops as pure numpy / OpenCV functions on a whole clip ``(T, H, W, C)``
uint8, following PIL's formulas (used by :class:`mats_lab.mm.transforms.VideoRandAugment`).

Where an op needs image statistics (auto-contrast, equalize, grey mean), they are taken over
the whole clip, so one op is one function applied to every frame.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "auto_contrast",
    "blend",
    "equalize",
    "gray",
    "lut",
    "sharpness_degenerate",
    "warp",
]


def lut(clip: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Apply a per-value table: ``(256,)`` for all channels or ``(C, 256)`` per channel."""
    table = np.clip(table, 0, 255).astype(np.uint8)
    if table.ndim == 1:
        return table[clip]
    out = np.empty_like(clip)
    for c in range(clip.shape[-1]):
        out[..., c] = table[c][clip[..., c]]
    return out


def blend(degenerate: np.ndarray, clip: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``Image.blend(degenerate, clip, factor)``."""
    out = degenerate.astype(np.float32) + factor * (clip.astype(np.float32) - degenerate)
    return np.clip(np.trunc(out), 0, 255).astype(np.uint8)  # PIL truncates


def gray(clip: np.ndarray) -> np.ndarray:
    """PIL's RGB -> L conversion (ITU-R 601-2 luma), ``(..., H, W, 1)`` uint8."""
    c = clip.astype(np.uint32)
    luma = (c[..., 0] * 19595 + c[..., 1] * 38470 + c[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[..., None]


def auto_contrast(clip: np.ndarray) -> np.ndarray:
    """PIL's ``autocontrast`` with the min/max of each channel over the whole clip."""
    table = np.tile(np.arange(256, dtype=np.float64), (clip.shape[-1], 1))
    for c in range(clip.shape[-1]):
        lo, hi = int(clip[..., c].min()), int(clip[..., c].max())
        if hi > lo:
            scale = 255.0 / (hi - lo)
            table[c] = np.floor(np.arange(256) * scale - lo * scale)
    return lut(clip, table)


def equalize(clip: np.ndarray) -> np.ndarray:
    """PIL's ``equalize`` with each channel's histogram over the whole clip."""
    table = np.tile(np.arange(256, dtype=np.int64), (clip.shape[-1], 1))
    for c in range(clip.shape[-1]):
        hist = np.bincount(clip[..., c].reshape(-1), minlength=256)
        nonzero = hist[hist > 0]
        if nonzero.size <= 1:
            continue
        step = (int(nonzero.sum()) - int(nonzero[-1])) // 255
        if step == 0:
            continue
        cumulative = np.concatenate([[0], np.cumsum(hist)[:-1]])
        table[c] = (step // 2 + cumulative) // step
    return lut(clip, table)


def warp(
    clip: np.ndarray, matrix: np.ndarray, fill: tuple[int, int, int], interp: int
) -> list[np.ndarray]:
    """Warp every frame with the same ``(2, 3)`` output->input affine ``matrix``."""
    h, w = clip.shape[1:3]
    flags = interp | cv2.WARP_INVERSE_MAP
    return [
        cv2.warpAffine(
            frame, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
        )
        for frame in clip
    ]


def sharpness_degenerate(clip: np.ndarray) -> np.ndarray:
    """PIL's ``ImageFilter.SMOOTH`` (3x3, centre 5, /13), border pixels left unchanged."""
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13.0
    out = clip.copy()
    for i, frame in enumerate(clip):
        smooth = cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REPLICATE)
        out[i, 1:-1, 1:-1] = smooth[1:-1, 1:-1]
    return out
