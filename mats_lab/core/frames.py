"""Adaptive (information-intensive) frame selection (METHOD §4).

The candidates are ``t_c`` tubelets (frame pairs for tubelet size 2). Each gets the number of
its tokens that fall in the clip-wide top-``keep_ratio`` set; ``num_select`` tubelets are then
drawn without replacement with probability proportional to that count in training, or taken
by highest count at test, and returned in temporal order.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mats_lab.core.selection import select_topk

__all__ = ["gather_tubelet_frames", "select_tubelets", "tubelet_counts"]


def tubelet_counts(
    scores: Tensor, num_tubelets: int, keep_ratio: float, nonnegative: bool = False
) -> Tensor:
    """How many tokens of each tubelet are in the global top-``keep_ratio`` set.

    Args:
        scores: ``(B, N)`` motion scores of all candidate tokens, raster order.
        num_tubelets: ``t_c``; must divide ``N``.
        keep_ratio: fraction of all ``N`` tokens in the top set.
        nonnegative: every score is ``+0.0`` or above (a faster key, see
            :func:`~mats_lab.core.selection.top_indices`).

    Returns:
        ``(B, t_c)`` int64 counts ``c_i``.
    """
    batch, num_tokens = scores.shape
    if num_tokens % num_tubelets:
        raise ValueError(f"num_tubelets={num_tubelets} does not divide {num_tokens} tokens")
    keep_idx = select_topk(scores, keep_ratio, nonnegative=nonnegative)  # (B, K)
    tubelet_of = keep_idx // (num_tokens // num_tubelets)  # (B, K) tubelet of each kept token
    counts = torch.zeros((batch, num_tubelets), dtype=torch.int64, device=scores.device)
    return counts.scatter_add_(1, tubelet_of, torch.ones_like(tubelet_of))


def select_tubelets(
    counts: Tensor,
    num_select: int,
    sample: bool,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick ``num_select`` tubelets from their counts, in temporal order.

    Args:
        counts: ``(B, t_c)`` non-negative counts (or any non-negative informativeness).
        num_select: ``tau``, at most ``t_c``.
        sample: draw without replacement with probability ``c_i / sum(c)`` (uniform when all
            counts are zero) — training; else the ``tau`` largest counts, ties to the earlier
            tubelet — test.
        generator: RNG for the draw.

    Returns:
        ``(B, tau)`` int64 tubelet indices, ascending.
    """
    batch, num_candidates = counts.shape
    if not 1 <= num_select <= num_candidates:
        raise ValueError(f"cannot select {num_select} of {num_candidates} tubelets")
    if not counts.is_meta and (counts < 0).any():  # meta tensors hold no values to check
        raise ValueError("tubelet counts must be non-negative")
    if sample:
        weights = counts.double()
        empty = weights.sum(dim=1, keepdim=True) == 0
        weights = torch.where(empty, torch.ones_like(weights), weights)
        # Rows with fewer non-zero weights than num_select: give zero weights a tiny mass so
        # the draw stays without replacement (the informative tubelets still come first).
        nonzero = (weights > 0).sum(dim=1, keepdim=True)
        short = nonzero < num_select
        weights = torch.where(short & (weights == 0), torch.full_like(weights, 1e-12), weights)
        chosen = torch.multinomial(weights, num_select, replacement=False, generator=generator)
    else:
        chosen = torch.sort(counts, dim=1, descending=True, stable=True).indices[:, :num_select]
    return chosen.sort(dim=1).values


def gather_tubelet_frames(video: Tensor, tubelet_idx: Tensor, tubelet_size: int) -> Tensor:
    """The frames of the chosen tubelets.

    Args:
        video: ``(B, C, T_c, H, W)`` candidate clip.
        tubelet_idx: ``(B, t)`` chosen tubelets.
        tubelet_size: ``t_s`` frames per tubelet.

    Returns:
        ``(B, C, t * t_s, H, W)``, in the order of ``tubelet_idx``.
    """
    offsets = torch.arange(tubelet_size, device=video.device)
    frame_idx = (tubelet_idx[:, :, None] * tubelet_size + offsets).flatten(1)  # (B, T)
    index = frame_idx[:, None, :, None, None].expand(
        -1, video.shape[1], -1, video.shape[3], video.shape[4]
    )
    return video.gather(2, index)
