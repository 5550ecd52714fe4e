"""``MATSPretrainer``: masked video autoencoding as an MMEngine ``BaseModel``.

One model for MATS pre-training and its baselines: ``masking='mats'`` (METHOD §2),
``'tube'`` (VideoMAE) or ``'random'``. The encoder is a :class:`MATSVisionTransformer`
stored as ``backbone``, so a pre-training checkpoint's ``backbone.*`` keys are exactly what an
MMAction2 ``Recognizer3D`` with that backbone expects: ``load_from=<pretrain.pth>`` (or the
backbone's ``init_cfg`` with ``prefix='backbone.'``) needs no key mapping; the decoder's keys
are reported as unused and skipped.
"""

from __future__ import annotations

import torch
from mmaction.registry import MODELS
from mmengine.dist import get_rank
from mmengine.model import BaseModel
from torch import Tensor

from mats_lab.models.mae import (
    MASKINGS,
    MAEDecoder,
    masked_autoencoder_loss,
    reconstruction_diagnostics,
)
from mats_lab.models.vit import VideoViT


@MODELS.register_module()
class MATSPretrainer(BaseModel):
    """Masked autoencoder over the tokens chosen by ``masking``.

    Args:
        backbone: config of the encoder (a ``MATSVisionTransformer``); its ``keep_ratio`` is
            the fraction of all tokens kept as candidates (``mats``), its
            ``candidate_ratio`` turns on adaptive frame selection. Mean pooling is turned off.
        masking: ``'mats'``, ``'tube'`` or ``'random'``.
        visible_ratio: fraction of all tokens the encoder sees.
        decoder_dims, decoder_depth, decoder_heads: decoder width, blocks and heads
            (384, 4, 6 for ViT-B).
        norm_pix_loss: normalise each target tubelet per channel (True in MATS and VideoMAE);
            ``False`` reconstructs the pixels in the model's input units.
        center_targets: reconstruct the temporally centred clip rather than the clip as
            given; ``None`` follows the backbone's ``temporal_center`` (the targets are then
            the input the encoder sees). A ``temporal_center`` encoder never sees still
            pixels, so with ``False`` most of its targets are unpredictable and the loss
            stays at that of predicting zeros (about 0.985 on the embedded dataset).
        seed: seeds the masking draws (offset by the process rank); ``None`` uses torch's
            global RNG, which MMEngine seeds from ``randomness``.
        data_preprocessor: an ``ActionDataPreprocessor`` config with ``format_shape='NCTHW'``.
        init_cfg: MMEngine init config.
    """

    def __init__(
        self,
        backbone: dict,
        masking: str = "mats",
        visible_ratio: float = 0.1,
        decoder_dims: int = 384,
        decoder_depth: int = 4,
        decoder_heads: int = 6,
        norm_pix_loss: bool = True,
        center_targets: bool | None = None,
        seed: int | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        if data_preprocessor is None:
            raise ValueError("MATSPretrainer needs a data_preprocessor (ActionDataPreprocessor)")
        if masking not in MASKINGS:
            raise ValueError(f"masking must be one of {MASKINGS}, got {masking!r}")
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        backbone = dict(backbone, use_mean_pooling=False)
        self.backbone: VideoViT = MODELS.build(backbone)
        self.masking = masking
        self.norm_pix_loss = norm_pix_loss
        self.center_targets = (
            self.backbone.temporal_center if center_targets is None else center_targets
        )
        self.visible_ratio = visible_ratio
        self.seed = seed
        self._generator: torch.Generator | None = None
        grid = self.backbone.grid_size
        num_tokens = self.backbone.num_tubelets * grid[0] * grid[1]
        channels = self.backbone.in_channels
        out_dims = self.backbone.tubelet_size * self.backbone.patch_size**2 * channels
        self.decoder = MAEDecoder(
            encoder_dims=self.backbone.embed_dims,
            embed_dims=decoder_dims,
            depth=decoder_depth,
            num_heads=decoder_heads,
            out_dims=out_dims,
            num_tokens=num_tokens,
        )

    def generator(self, device: torch.device) -> torch.Generator | None:
        """The masking generator, seeded per process rank, made on first use."""
        if self.seed is None or device.type == "meta":  # meta: shapes only, no draws
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed + 1000003 * get_rank())
        return self._generator

    def forward(
        self, inputs: Tensor, data_samples: list | None = None, mode: str = "tensor"
    ) -> dict[str, Tensor] | Tensor | list:
        """``inputs``: ``(B, num_views, C, T, H, W)`` or ``(B, C, T, H, W)``.

        ``mode='loss'`` returns ``{'loss': mse, 'zero_mse': ..., 'explained': ...}`` (only
        ``loss`` is optimised, see :func:`reconstruction_diagnostics`); ``'tensor'`` the
        ``(B, M, P)`` predictions; ``'predict'`` the data samples with ``pred_loss`` set (for a
        validation loop).
        """
        video = inputs.flatten(0, 1) if inputs.dim() == 6 else inputs  # (B, C, T, H, W)
        preprocessor = self.data_preprocessor
        out = masked_autoencoder_loss(
            self.backbone,
            self.decoder,
            video,
            self.masking,
            self.backbone.keep_ratio,
            self.visible_ratio,
            mean=getattr(preprocessor, "mean", None),
            std=getattr(preprocessor, "std", None),
            generator=self.generator(video.device),
            center_targets=self.center_targets,
            norm_pix_loss=self.norm_pix_loss,
        )
        if mode == "loss":
            return {"loss": out.loss, **reconstruction_diagnostics(out.loss, out.target)}
        if mode == "tensor":
            return out.pred
        if mode == "predict":
            samples = data_samples or []
            for sample in samples:
                sample.set_field(out.loss.detach(), "pred_loss")
            return samples
        raise ValueError(f"mode must be 'loss', 'tensor' or 'predict', got {mode!r}")
