"""Token motion scorers behind one interface, for ablations (METHOD §1 and §6).

Every scorer returns ``(B, t, L)`` scores on the token grid, tubelet 0 copying tubelet 1:

- ``embedding`` (MATS, default): distance between consecutive tubelet embeddings
  (:func:`mats_lab.core.motion.tubelet_grid_scores`);
- ``pixel``: raw pixel-difference energy between consecutive tubelets at the same place —
  needs no model;
- ``motion_vectors``: the codec's motion (H.264 motion vectors, rendered by the data pipeline
  into a per-pixel magnitude map), averaged over each token's tubelet and patch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mats_lab.core.motion import tubelet_grid_scores
from mats_lab.core.patchify import patchify

__all__ = [
    "NONNEGATIVE_SCORERS",
    "SCORERS",
    "motion_map_scores",
    "pixel_difference_scores",
    "tubelet_grid_scores",
]

SCORERS = ("embedding", "pixel", "motion_vectors")
# Scorers whose every score has its sign bit clear (a norm, a mean of squares): selection can
# then rank the float bits directly (``nonnegative=`` of :mod:`mats_lab.core.selection`).
# ``motion_vectors`` is not among them: its map passes the data preprocessor, whose mean for
# the motion channel a config may set.
NONNEGATIVE_SCORERS = ("embedding", "pixel")


def _copy_first(diffs: Tensor) -> Tensor:
    """``(B, t-1, L)`` differences → ``(B, t, L)`` with tubelet 0 taking tubelet 1's score."""
    return torch.cat([diffs[:, :1], diffs], dim=1)


def pixel_difference_scores(video: Tensor, tubelet_size: int, patch_size: int) -> Tensor:
    """Mean squared pixel difference between a token and the same place one tubelet earlier.

    Args:
        video: ``(B, C, T, H, W)``, ``T / t_s >= 2``.

    Returns:
        ``(B, t, L)`` float scores, no gradient.
    """
    with torch.no_grad():
        batch = video.shape[0]
        t = video.shape[2] // tubelet_size
        if t < 2:
            raise ValueError(f"pixel scores need at least 2 tubelets, got {t}")
        patches = patchify(video.float(), tubelet_size, patch_size)  # (B, N, P, C)
        patches = patches.reshape(batch, t, -1, patches.shape[2] * patches.shape[3])
        energy = (patches[:, 1:] - patches[:, :-1]).pow(2).mean(dim=-1)  # (B, t-1, L)
        return _copy_first(energy)


def motion_map_scores(motion: Tensor, tubelet_size: int, patch_size: int) -> Tensor:
    """Average a per-pixel motion magnitude map over each token's tubelet and patch.

    Args:
        motion: ``(B, T, H, W)`` non-negative motion magnitude per frame and pixel.

    Returns:
        ``(B, t, L)`` float scores.
    """
    with torch.no_grad():
        pooled = F.avg_pool3d(
            motion.float()[:, None],
            kernel_size=(tubelet_size, patch_size, patch_size),
        )  # (B, 1, t, h, w)
        return pooled.flatten(3)[:, 0]  # (B, t, L)
