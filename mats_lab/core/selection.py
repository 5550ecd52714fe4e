"""Token selection: the fine-tuning top-k and the pre-training split (METHOD §2, §3).

Index convention used everywhere in mats-lab: selections are ``(B, K)`` int64 token indices
in ascending (raster) order. Ratios are fractions of all ``N`` tokens, truncated with
``int()`` as in the published code.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["count_for_ratio", "pretrain_split", "select_topk", "sort_scores", "top_indices"]


def count_for_ratio(ratio: float, num_tokens: int, name: str = "ratio") -> int:
    """``int(ratio * num_tokens)``, after checking that ``0 < ratio <= 1`` and the count is >= 1."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {ratio}")
    count = int(ratio * num_tokens)
    if count < 1:
        raise ValueError(f"{name}={ratio} of {num_tokens} tokens keeps no token")
    return count


def _ordered_int_key(scores: Tensor, nonnegative: bool = False) -> Tensor:
    """``(B, N)`` float32 → int32 whose order is the scores' order (equal scores give equal
    keys; ``-0.0`` equals ``0.0``).

    With ``nonnegative`` the caller promises that no score has its sign bit set (every score
    is ``+0.0`` or above, as a norm or a mean of squares gives); the float's bits then
    already order as integers and the key is a free view. A negative score (or ``-0.0``)
    would then rank below every other score.
    """
    if nonnegative:
        return scores.view(torch.int32)
    bits = (scores + 0.0).view(torch.int32)  # + 0.0 turns -0.0 into 0.0
    # negative floats: flipping the magnitude bits reverses their order below all positives
    return torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)


def _tie_broken_key(key: Tensor, low: Tensor) -> Tensor:
    """``key * 2**31 + low`` in int64, one kernel: ``(B, N)`` int32 ordered keys and ``(B, N)``
    or ``(N,)`` int64 tie-breakers in ``[0, 2**31)`` → unique-per-``low`` int64 keys that
    order by ``key`` first, then by ``low``."""
    return torch.add(low, key, alpha=2**31)


def _random_low(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Random int64 tie-breakers in ``[0, 2**31)``."""
    return torch.randint(0, 2**31, shape, generator=generator, device=device, dtype=torch.int64)


def sort_scores(scores: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Token indices ordered by descending score.

    Ties are broken toward the lower token index (a stable sort), or at random when a
    ``generator`` is given: each token draws a random 31-bit number that orders it among the
    tokens of equal score (one sort of ``score bits << 31 | random``; float64 scores are
    shuffled first and then stably sorted instead, which costs about five times more).

    Args:
        scores: ``(B, N)``.
        generator: optional, on ``scores.device``.

    Returns:
        ``(B, N)`` int64 indices, highest score first.
    """
    if generator is None:
        return torch.sort(scores, dim=1, descending=True, stable=True).indices
    if scores.dtype != torch.float64:
        tiebreak = _random_low(scores.shape, generator, scores.device)  # (B, N)
        key = _tie_broken_key(_ordered_int_key(scores.float()), tiebreak)
        return torch.sort(key, dim=1, descending=True, stable=True).indices
    noise = torch.rand(scores.shape, generator=generator, device=scores.device)
    shuffle = noise.argsort(dim=1)  # (B, N) a random permutation per row
    order = torch.sort(scores.gather(1, shuffle), dim=1, descending=True, stable=True).indices
    return shuffle.gather(1, order)


def top_indices(
    scores: Tensor,
    count: int,
    generator: torch.Generator | None = None,
    nonnegative: bool = False,
    ordered: bool = True,
) -> Tensor:
    """The ``count`` highest-scoring tokens, ties broken as in :func:`sort_scores`.

    One ``topk`` over unique int64 keys (score bits, then the reversed token index or a
    random number) instead of a full sort: the same tokens as ``sort_scores(...)[:, :count]``
    (the same order without a generator).

    Args:
        scores: ``(B, N)``.
        count: how many, ``1 <= count <= N``.
        generator: random tie-breaking when given; else ties go to the lower index.
        nonnegative: every score is ``+0.0`` or above (a faster key; see
            :func:`_ordered_int_key`).
        ordered: return them highest score first; ``False`` leaves their order to ``topk``
            (the same tokens, without sorting them: for callers that reorder them anyway).

    Returns:
        ``(B, count)`` int64 indices, highest score first when ``ordered``.
    """
    if scores.dtype == torch.float64:
        return sort_scores(scores, generator)[:, :count]
    num = scores.shape[1]
    if generator is None:  # lower index wins a tie; every key is unique
        low = torch.arange(num - 1, -1, -1, device=scores.device)  # (N,)
    else:
        low = _random_low(scores.shape, generator, scores.device)
    return _top_by_key(scores, count, low, nonnegative, ordered)


def _top_by_key(
    scores: Tensor, count: int, low: Tensor, nonnegative: bool, ordered: bool
) -> Tensor:
    """``(B, count)`` indices of the largest float32 ``scores``, ties to the larger ``low``
    (``(B, N)`` or ``(N,)`` int64 in ``[0, 2**31)``): one ``topk`` over unique keys."""
    key = _tie_broken_key(_ordered_int_key(scores.float(), nonnegative), low)  # (B, N)
    return torch.topk(key, count, dim=1, sorted=ordered).indices


def select_topk(
    scores: Tensor,
    keep_ratio: float,
    generator: torch.Generator | None = None,
    nonnegative: bool = False,
) -> Tensor:
    """The top ``K = int(keep_ratio * N)`` tokens by score, in ascending (raster) order.

    Args:
        scores: ``(B, N)`` motion scores.
        keep_ratio: fraction of all ``N`` tokens to keep, in ``(0, 1]``.
        generator: random tie-breaking when given; else ties go to the lower index.
        nonnegative: every score is ``+0.0`` or above (see :func:`top_indices`).

    Returns:
        ``(B, K)`` int64 kept-token indices, sorted ascending.
    """
    num_keep = count_for_ratio(keep_ratio, scores.shape[1], "keep_ratio")
    keep_idx = top_indices(scores, num_keep, generator, nonnegative, ordered=False)  # (B, K)
    return keep_idx.sort(dim=1).values


def pretrain_split(
    scores: Tensor,
    keep_ratio: float,
    visible_ratio: float,
    generator: torch.Generator | None = None,
    nonnegative: bool = False,
) -> tuple[Tensor, Tensor]:
    """Split the top-``K`` motion tokens into visible tokens and reconstruction targets.

    ``K = int(keep_ratio * N)`` candidates by score; ``V = int(visible_ratio * N)`` of them,
    uniformly at random per sample, are visible to the encoder; the other ``K - V`` are the
    targets. All other tokens are discarded.

    Args:
        scores: ``(B, N)`` motion scores.
        keep_ratio: candidates as a fraction of all ``N`` tokens.
        visible_ratio: visible tokens as a fraction of all ``N`` tokens, below ``keep_ratio``.
        generator: drives the visible draw and tie-breaking; ``None`` uses torch's global RNG
            for the draw (ties then go to the lower index).
        nonnegative: every score is ``+0.0`` or above (see :func:`top_indices`).

    Returns:
        ``(visible_idx (B, V), target_idx (B, K - V))``, each sorted ascending.
    """
    num_tokens = scores.shape[1]
    num_keep = count_for_ratio(keep_ratio, num_tokens, "keep_ratio")
    num_visible = count_for_ratio(visible_ratio, num_tokens, "visible_ratio")
    if num_visible >= num_keep:
        raise ValueError(
            f"visible_ratio={visible_ratio} must leave targets among the "
            f"keep_ratio={keep_ratio} candidates ({num_visible} visible >= {num_keep} kept)"
        )
    if generator is None or scores.dtype == torch.float64:
        candidates = top_indices(scores, num_keep, generator, nonnegative, ordered=False)
        noise = _random_low(candidates.shape, generator, scores.device)  # (B, K)
    else:  # one draw: the N tokens' tie-breakers, then the K candidates' visibility noise
        draw = _random_low((scores.shape[0], num_tokens + num_keep), generator, scores.device)
        candidates = _top_by_key(scores, num_keep, draw[:, :num_tokens], nonnegative, False)
        noise = draw[:, num_tokens:]  # (B, K)
    # the V candidates with the lowest noise are shown: a uniformly random V-subset
    shown = noise.topk(num_visible, dim=1, largest=False, sorted=False).indices  # (B, V)
    # Targets carry 2**32 on top of their token index (< 2**32), so one sort puts the visible
    # tokens first and the targets after, each in raster order.
    key = (candidates + 2**32).scatter_(1, shown, candidates.gather(1, shown))  # (B, K)
    ordered = key.sort(dim=1).values  # (B, K)
    return ordered[:, :num_visible], ordered[:, num_visible:] - 2**32
