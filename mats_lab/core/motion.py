"""Motion scores per token (METHOD §1).

A token's score is the Euclidean distance between its tubelet embedding and the embedding of
the same spatial position in the previous tubelet. The embedding is a linear Conv3d, so the
score is the norm of a learned projection of the pixel difference: still regions score
exactly 0 (up to the bias, which cancels).

:func:`temporal_center` is the matching input option: it subtracts each pixel's mean over
time, so still content becomes exactly 0 while every frame-to-frame difference, and hence
every motion score, stays what it was.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["temporal_center", "token_motion_scores", "tubelet_grid_scores"]


def tubelet_grid_scores(embeddings: Tensor) -> Tensor:
    """Motion scores on the token grid.

    Args:
        embeddings: ``(B, t, L, D)`` tubelet embeddings (patch embedding output, bias
            included, before the position embedding), ``t >= 2`` tubelets of ``L`` tokens.

    Returns:
        ``(B, t, L)`` float scores: ``s[:, i] = ||e[:, i] - e[:, i-1]||_2`` over ``D`` for
        ``i >= 1``, and ``s[:, 0] = s[:, 1]`` (tubelet 0 has no predecessor).
    """
    if embeddings.dim() != 4:
        raise ValueError(f"embeddings must be (B, t, L, D), got shape {tuple(embeddings.shape)}")
    if embeddings.shape[1] < 2:
        raise ValueError(f"motion scores need at least 2 tubelets, got {embeddings.shape[1]}")
    with torch.no_grad():
        # Reduce over D as the (B, D, t, L) view: the patch embedding's Conv3d lays its output
        # out that way, and a norm over a strided last axis is several times slower than a sum
        # of squares over an outer one (elementwise results keep the input's layout, so a
        # contiguous (B, t, L, D) input stays fast as well).
        e = embeddings.permute(0, 3, 1, 2)  # (B, D, t, L), a view
        # Norms in float32 at least: bf16 embeddings lose too much on small differences.
        diff = (e[:, :, 1:] - e[:, :, :-1]).float()  # (B, D, t-1, L), a fresh tensor
        scores = diff.mul_(diff).sum(dim=1).sqrt_()  # (B, t-1, L)
        return torch.cat([scores[:, :1], scores], dim=1)  # (B, t, L)


def token_motion_scores(embeddings: Tensor, num_tubelets: int) -> Tensor:
    """Motion score of every token, in raster order (METHOD §1).

    Args:
        embeddings: ``(B, N, D)`` tubelet embeddings in raster order
            (``n = t * L + h * w_grid + w``), before the position embedding.
        num_tubelets: ``t``, the number of tubelets; must divide ``N`` and be >= 2.

    Returns:
        ``(B, N)`` float scores, no gradient.
    """
    if embeddings.dim() != 3:
        raise ValueError(f"embeddings must be (B, N, D), got shape {tuple(embeddings.shape)}")
    batch, num_tokens, width = embeddings.shape
    if num_tubelets < 2 or num_tokens % num_tubelets:
        raise ValueError(
            f"num_tubelets={num_tubelets} must be >= 2 and divide the {num_tokens} tokens"
        )
    grid = embeddings.reshape(batch, num_tubelets, num_tokens // num_tubelets, width)
    return tubelet_grid_scores(grid).reshape(batch, num_tokens)  # (B, N)


def temporal_center(video: Tensor) -> Tensor:
    """Subtract every pixel's mean over time: what stays still becomes exactly 0.

    Args:
        video: ``(B, C, T, H, W)``.

    Returns:
        ``(B, C, T, H, W)``: ``video - video.mean(dim=2)``; a pixel that never changes is
        exactly 0, also in floating point. Differences between frames are
        unchanged, so are the motion scores of a linear embedding (the mean cancels in
        ``e[t] - e[t-1]``, as the bias does); a clip whose frames are all equal becomes all
        zeros.
    """
    if video.dim() != 5:
        raise ValueError(f"video must be (B, C, T, H, W), got shape {tuple(video.shape)}")
    # Relative to frame 0 first: the same value in exact arithmetic, and in floating point a
    # pixel that never changes gives exactly 0 (a mean of equal floats need not equal them).
    change = video - video[:, :, :1]  # (B, C, T, H, W)
    return change - change.mean(dim=2, keepdim=True)
