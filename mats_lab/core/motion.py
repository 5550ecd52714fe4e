"""Motion scores per token (METHOD §1).

A token's score is the Euclidean distance between its tubelet embedding and the embedding of
the same spatial position in the previous tubelet. The embedding is a linear Conv3d, so the
score is the norm of a learned projection of the pixel difference: still regions score
exactly 0 (up to the bias, which cancels).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["token_motion_scores", "tubelet_grid_scores"]


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
        diff = embeddings[:, 1:] - embeddings[:, :-1]  # (B, t-1, L, D)
        # Norms in float32 at least: bf16 embeddings lose too much on small differences.
        scores = torch.linalg.vector_norm(diff.float(), dim=-1)  # (B, t-1, L)
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
