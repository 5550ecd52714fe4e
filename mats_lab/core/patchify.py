"""Tubelet patchify, normalised pixel targets (METHOD §2) and their inverses.

Token order is raster order ``n = t * (h * w) + i * w + j``; inside a token the values are
flattened ``(t_s, p, p, C)`` with channel fastest, as VideoMAE does.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "denormalize_tubelets",
    "gather_tubelets",
    "normalize_tubelets",
    "normalized_pixel_targets",
    "patchify",
    "unpatchify",
]


def patchify(video: Tensor, tubelet_size: int, patch_size: int) -> Tensor:
    """Cut a clip into tubelets.

    Args:
        video: ``(B, C, T, H, W)``; ``T``, ``H``, ``W`` divisible by the tubelet / patch size.

    Returns:
        ``(B, N, t_s * p * p, C)`` with ``N = (T / t_s)(H / p)(W / p)`` in raster order.
    """
    batch, channels, frames, height, width = video.shape
    if frames % tubelet_size or height % patch_size or width % patch_size:
        raise ValueError(
            f"clip {tuple(video.shape)} is not divisible into {tubelet_size}x{patch_size}x"
            f"{patch_size} tubelets"
        )
    t, h, w = frames // tubelet_size, height // patch_size, width // patch_size
    x = video.reshape(batch, channels, t, tubelet_size, h, patch_size, w, patch_size)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (B, t, h, w, t_s, p, p, C)
    return x.reshape(batch, t * h * w, tubelet_size * patch_size * patch_size, channels)


def gather_tubelets(video: Tensor, tubelet_size: int, patch_size: int, token_idx: Tensor) -> Tensor:
    """The tubelets of some tokens only: ``patchify(video)`` rows ``token_idx``, without
    copying the others.

    Args:
        video: ``(B, C, T, H, W)``.
        token_idx: ``(B, M)`` raster token indices.

    Returns:
        ``(B, M, t_s * p * p, C)``, equal to ``patchify(video).gather`` along tokens.
    """
    batch, channels, frames, height, width = video.shape
    if frames % tubelet_size or height % patch_size or width % patch_size:
        raise ValueError(
            f"clip {tuple(video.shape)} is not divisible into {tubelet_size}x{patch_size}x"
            f"{patch_size} tubelets"
        )
    t, h, w = frames // tubelet_size, height // patch_size, width // patch_size
    x = video.reshape(batch, channels, t, tubelet_size, h, patch_size, w, patch_size)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (B, t, h, w, t_s, p, p, C), a view
    rows = torch.arange(batch, device=video.device)[:, None]  # (B, 1)
    ti, rest = token_idx // (h * w), token_idx % (h * w)  # (B, M) each
    picked = x[rows, ti, rest // w, rest % w]  # (B, M, t_s, p, p, C): copies M rows only
    return picked.reshape(batch, token_idx.shape[1], -1, channels)


def unpatchify(
    patches: Tensor, grid: tuple[int, int, int], tubelet_size: int, patch_size: int
) -> Tensor:
    """Inverse of :func:`patchify`.

    Args:
        patches: ``(B, N, t_s * p * p, C)`` or flattened ``(B, N, t_s * p * p * C)``.
        grid: ``(t, h, w)`` token grid with ``N = t * h * w``.

    Returns:
        ``(B, C, T, H, W)``.
    """
    t, h, w = grid
    batch = patches.shape[0]
    x = patches.reshape(batch, t, h, w, tubelet_size, patch_size, patch_size, -1)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, C, t, t_s, h, p, w, p)
    return x.reshape(batch, -1, t * tubelet_size, h * patch_size, w * patch_size)


def normalize_tubelets(patches: Tensor, eps: float = 1e-6) -> tuple[Tensor, Tensor, Tensor]:
    """Normalise each tubelet's pixels per channel: mean 0, unbiased std 1.

    Args:
        patches: ``(B, N, P, C)`` from :func:`patchify`.
        eps: added after the square root.

    Returns:
        ``(normed (B, N, P, C), mean (B, N, 1, C), std (B, N, 1, C))`` where ``std`` already
        includes ``eps``.
    """
    mean = patches.mean(dim=2, keepdim=True)
    std = patches.var(dim=2, unbiased=True, keepdim=True).sqrt() + eps
    return (patches - mean) / std, mean, std


def denormalize_tubelets(normed: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Inverse of :func:`normalize_tubelets`: ``(B, N, P, C)`` pixels back."""
    return normed * std + mean


def normalized_pixel_targets(
    video: Tensor,
    tubelet_size: int,
    patch_size: int,
    mean: Tensor | None = None,
    std: Tensor | None = None,
    token_idx: Tensor | None = None,
) -> Tensor:
    """Reconstruction targets of the MAE loss.

    Args:
        video: ``(B, C, T, H, W)`` clip as the model receives it (normalised input).
        mean, std: the input normalisation, broadcastable to ``(1, C, 1, 1, 1)`` (for example
            ``(C, 1, 1, 1)``); when given it is undone first.
        token_idx: ``(B, M)`` the target tokens; ``None`` for all ``N``. Only these tubelets
            are copied and normalised (MATS reconstructs a fifth of the tokens).

    Returns:
        ``(B, M, t_s * p * p * C)`` (``M = N`` without ``token_idx``) per-tubelet, per-channel
        normalised pixels, channel fastest.
    """
    with torch.no_grad():
        if token_idx is None:
            patches = patchify(video.float(), tubelet_size, patch_size)  # (B, N, P, C)
        else:
            patches = gather_tubelets(video, tubelet_size, patch_size, token_idx).float()
        if mean is not None and std is not None:
            channels = video.shape[1]  # per-channel affine: channel is the last axis here
            patches = patches * std.reshape(1, 1, 1, channels) + mean.reshape(1, 1, 1, channels)
        normed, _, _ = normalize_tubelets(patches)  # (B, M, P, C)
        return normed.flatten(2)
