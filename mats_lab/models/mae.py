"""Masked video autoencoding on the selected tokens (METHOD §2) and its baselines (§6).

``masked_autoencoder_loss`` runs encoder → decoder → loss for the three maskings that share
this one implementation and differ only in how ``(visible_idx, target_idx)`` is chosen:

- ``mats``: top ``keep_ratio`` tokens by motion score, ``visible_ratio`` of all tokens visible,
  the other candidates reconstructed, the rest discarded;
- ``tube``: VideoMAE tube masking, every hidden token reconstructed;
- ``random``: random token masking, every hidden token reconstructed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mats_lab.core.masks import random_masking, tube_masking
from mats_lab.core.motion import temporal_center as center_over_time
from mats_lab.core.patchify import gather_tubelets, normalized_pixel_targets
from mats_lab.core.selection import count_for_ratio, pretrain_split
from mats_lab.models.layers import Block, init_vit_weights, sinusoid_table
from mats_lab.models.vit import VideoViT

__all__ = [
    "MASKINGS",
    "MAEDecoder",
    "MAEOutput",
    "choose_tokens",
    "masked_autoencoder_loss",
    "reconstruction_diagnostics",
]

MASKINGS = ("mats", "tube", "random")


class MAEDecoder(nn.Module):
    """VideoMAE's light decoder, run only on the visible tokens plus the target positions.

    Args:
        encoder_dims: ``D`` of the encoder.
        embed_dims: decoder width (384 for ViT-B).
        depth: decoder blocks (4 for ViT-B).
        num_heads: decoder heads (6 for ViT-B).
        out_dims: values predicted per token, ``t_s * p * p * C``.
        num_tokens: ``N`` tokens per clip (size of the position table).
        mlp_ratio, qkv_bias, init_values: as in the encoder blocks.
    """

    pos_embed: Tensor

    def __init__(
        self,
        encoder_dims: int,
        embed_dims: int,
        depth: int,
        num_heads: int,
        out_dims: int,
        num_tokens: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        init_values: float = 0.0,
    ) -> None:
        super().__init__()
        self.encoder_to_decoder = nn.Linear(encoder_dims, embed_dims, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.register_buffer("pos_embed", sinusoid_table(num_tokens, embed_dims), persistent=False)
        self.blocks = nn.ModuleList(
            Block(embed_dims, num_heads, mlp_ratio, qkv_bias, init_values=init_values)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.head = nn.Linear(embed_dims, out_dims)
        init_vit_weights(self)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, visible: Tensor, visible_idx: Tensor, target_idx: Tensor) -> Tensor:
        """Predict the target tokens.

        Args:
            visible: ``(B, V, D)`` encoder output of the visible tokens.
            visible_idx: ``(B, V)`` their positions.
            target_idx: ``(B, M)`` positions to reconstruct.

        Returns:
            ``(B, M, out_dims)`` predictions, in ``target_idx`` order.
        """
        x = self.encoder_to_decoder(visible)  # (B, V, Dd)
        dims = x.shape[-1]
        pos = self.pos_embed.expand(x.shape[0], -1, -1)  # (B, N, Dd)
        x = x + pos.gather(1, visible_idx[:, :, None].expand(-1, -1, dims))
        queries = self.mask_token + pos.gather(1, target_idx[:, :, None].expand(-1, -1, dims))
        x = torch.cat([x, queries], dim=1)  # (B, V + M, Dd)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x[:, -target_idx.shape[1] :])  # (B, M, Dd)
        return self.head(x)


def choose_tokens(
    masking: str,
    scores: Tensor | None,
    grid: tuple[int, int, int],
    keep_ratio: float,
    visible_ratio: float,
    generator: torch.Generator | None,
    batch: int,
    device: torch.device,
    nonnegative: bool = False,
) -> tuple[Tensor, Tensor]:
    """``(visible_idx (B, V), target_idx (B, M))`` for one of :data:`MASKINGS`.

    ``scores`` (``(B, N)``) is needed by ``mats`` only (``nonnegative``: none has its sign
    bit set, see :func:`~mats_lab.core.selection.top_indices`); ``grid`` is ``(t, h, w)``.
    """
    t, h, w = grid
    if masking == "mats":
        if scores is None:
            raise ValueError("mats masking needs motion scores")
        return pretrain_split(scores, keep_ratio, visible_ratio, generator, nonnegative)
    if masking == "tube":
        return tube_masking(batch, t, h * w, visible_ratio, generator, device)
    if masking == "random":
        return random_masking(batch, t * h * w, visible_ratio, generator, device)
    raise ValueError(f"masking must be one of {MASKINGS}, got {masking!r}")


@dataclass
class MAEOutput:
    """What one pre-training forward produced.

    Attributes:
        loss: scalar normalised-pixel MSE over the target tokens.
        pred: ``(B, M, t_s * p * p * C)`` predictions.
        target: ``(B, M, t_s * p * p * C)`` normalised pixel targets.
        visible_idx: ``(B, V)``; target_idx: ``(B, M)``; tubelet_idx: ``(B, t)`` frames used.
    """

    loss: Tensor
    pred: Tensor
    target: Tensor
    visible_idx: Tensor
    target_idx: Tensor
    tubelet_idx: Tensor


def masked_autoencoder_loss(
    encoder: VideoViT,
    decoder: MAEDecoder,
    video: Tensor,
    masking: str,
    keep_ratio: float,
    visible_ratio: float,
    mean: Tensor | None = None,
    std: Tensor | None = None,
    generator: torch.Generator | None = None,
    center_targets: bool = False,
    norm_pix_loss: bool = True,
) -> MAEOutput:
    """One masked-autoencoder forward with the loss.

    Args:
        encoder: the ViT (``use_mean_pooling=False``); its frame selection applies.
        decoder: the :class:`MAEDecoder`.
        video: ``(B, C, T, H, W)`` normalised clip (plus a motion channel for the
            ``motion_vectors`` scorer).
        masking: ``mats``, ``tube`` or ``random``.
        keep_ratio: ``mats`` candidates as a fraction of all tokens.
        visible_ratio: visible tokens as a fraction of all tokens.
        mean, std: input normalisation, undone for the pixel targets.
        generator: drives every random choice.
        center_targets: reconstruct the temporally centred clip (each pixel minus its mean
            over the frames used) instead of the clip as given: the input a
            ``temporal_center`` encoder sees. Without it such an encoder is asked for the
            still background it is never shown, which it cannot predict.
        norm_pix_loss: normalise each target tubelet per channel (METHOD §2); ``False``
            reconstructs the pixels in the model's input units (VideoMAE's
            ``normlize_target=False``).
    """
    batch = video.shape[0]
    prep = encoder.prepare(video, with_scores=masking == "mats")
    if masking == "mats":
        count_for_ratio(keep_ratio, prep.embeddings.shape[1], "keep_ratio")
    visible_idx, target_idx = choose_tokens(
        masking,
        prep.scores,
        prep.grid,
        keep_ratio,
        visible_ratio,
        generator,
        batch,
        video.device,
        encoder.scores_nonnegative,
    )
    tokens = encoder.positioned_tokens(prep, visible_idx)  # (B, V, D)
    visible = encoder.encode(tokens)  # (B, V, D)
    pred = decoder(visible, visible_idx, target_idx)  # (B, M, P)
    # targets come from the frames actually used (after frame selection); only the target
    # tubelets are cut out and normalised
    target_video = center_over_time(prep.video) if center_targets else prep.video
    if not norm_pix_loss:
        target = gather_tubelets(
            target_video, encoder.tubelet_size, encoder.patch_size, target_idx
        ).flatten(2)  # (B, M, P)
    else:
        # Centred targets skip undoing the input normalisation: a per-channel affine map
        # cancels in the per-tubelet normalisation anyway, and on centred clips it would turn
        # the exact zeros of still pixels into rounding noise that the normalisation then
        # blows up (mean squared target ~250 instead of <= 1).
        undo = (None, None) if center_targets else (mean, std)
        target = normalized_pixel_targets(
            target_video, encoder.tubelet_size, encoder.patch_size, *undo, target_idx
        )  # (B, M, P)
    loss = F.mse_loss(pred.float(), target)
    return MAEOutput(loss, pred, target, visible_idx, target_idx, prep.tubelet_idx)


def reconstruction_diagnostics(loss: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Is the pre-training learning anything? The loss against that of predicting zeros.

    With normalised-pixel targets every target tubelet has mean 0 per channel, so predicting
    zeros is predicting each token's own mean: the trivial answer a decoder reaches in its
    first steps without any information from the visible tokens.

    Args:
        loss: scalar MSE of the predictions (as :func:`masked_autoencoder_loss` returns it).
        target: ``(B, M, P)`` the targets it was computed on.

    Returns:
        ``zero_mse``: the MSE of predicting zeros (the targets' mean square); ``explained``:
        ``1 - loss / zero_mse``, the share of it the prediction removes (0: nothing learned
        beyond zeros; 1: perfect; 0 too when every target of the batch is exactly zero, as for
        clips with nothing moving under centred targets). Both detached: logged, never
        optimised (their names hold no ``loss``, so MMEngine's ``parse_losses`` leaves them out
        of the sum).
    """
    with torch.no_grad():
        zero = target.float().pow(2).mean()
        explained = torch.where(zero > 0, 1.0 - loss.detach().float() / zero, zero.new_zeros(()))
    return {"zero_mse": zero, "explained": explained}
