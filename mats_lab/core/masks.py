"""Baseline masks with the same contract as :func:`mats_lab.core.selection.pretrain_split`.

Each returns ``(visible_idx (B, V), target_idx (B, N - V))``, both sorted ascending: the
baselines reconstruct every token that is not visible.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mats_lab.core.selection import count_for_ratio

__all__ = ["random_masking", "tube_masking"]


def _split_by_rank(rank_noise: Tensor, num_visible: int) -> tuple[Tensor, Tensor]:
    """Lowest-noise ``num_visible`` positions visible, the rest targets; both sorted."""
    order = rank_noise.argsort(dim=1)  # (B, N)
    visible = order[:, :num_visible].sort(dim=1).values
    target = order[:, num_visible:].sort(dim=1).values
    return visible, target


def tube_masking(
    batch: int,
    num_tubelets: int,
    tokens_per_tubelet: int,
    visible_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """VideoMAE tube masking: one random 2-D mask per clip, repeated over every tubelet.

    As in VideoMAE, the hidden positions per tubelet are counted with ``int()``:
    ``int((1 - visible_ratio) * L)`` hidden, the rest visible (0.1 of 196 → 20 visible).

    Args:
        batch: ``B``.
        num_tubelets: ``t``.
        tokens_per_tubelet: ``L``.
        visible_ratio: fraction of tokens left visible, in ``(0, 1)``.
        generator: explicit RNG (on ``device``); ``None`` uses torch's global RNG.
        device: where the indices live.

    Returns:
        ``(visible_idx (B, t * Lv), target_idx (B, t * (L - Lv)))`` in raster order.
    """
    if not 0.0 < visible_ratio < 1.0:
        raise ValueError(f"visible_ratio must be in (0, 1), got {visible_ratio}")
    # The small epsilon keeps e.g. (1 - 0.7) * 10 = 2.999... from truncating to 2.
    num_hidden = int((1.0 - visible_ratio) * tokens_per_tubelet + 1e-9)
    num_visible = tokens_per_tubelet - num_hidden
    if num_visible < 1 or num_hidden < 1:
        raise ValueError(
            f"visible_ratio={visible_ratio} of {tokens_per_tubelet} tokens per tubelet leaves "
            f"{num_visible} visible and {num_hidden} hidden; both must be >= 1"
        )
    noise = torch.rand((batch, tokens_per_tubelet), generator=generator, device=device)
    vis2d, hid2d = _split_by_rank(noise, num_visible)  # (B, Lv), (B, L - Lv)
    offsets = torch.arange(num_tubelets, device=noise.device) * tokens_per_tubelet  # (t,)

    def repeat(pos: Tensor) -> Tensor:  # (B, M) -> (B, t * M), raster order
        return (offsets[None, :, None] + pos[:, None, :]).reshape(batch, -1)

    return repeat(vis2d), repeat(hid2d)


def random_masking(
    batch: int,
    num_tokens: int,
    visible_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Random token masking (ST-MAE style): ``V = int(visible_ratio * N)`` visible per sample.

    Returns:
        ``(visible_idx (B, V), target_idx (B, N - V))`` in raster order.
    """
    num_visible = count_for_ratio(visible_ratio, num_tokens, "visible_ratio")
    if num_visible >= num_tokens:
        raise ValueError(f"visible_ratio={visible_ratio} leaves nothing to reconstruct")
    noise = torch.rand((batch, num_tokens), generator=generator, device=device)
    return _split_by_rank(noise, num_visible)
