"""``MATSVisionTransformer``: the MATS video ViT as an MMAction2 backbone.

Thin: the computation is :class:`mats_lab.models.vit.VideoViT`; this adds MMEngine's
``init_cfg`` (for ``Pretrained`` weights) and registration in MMAction2's ``MODELS``. Its
parameter names equal mmaction2's ``VisionTransformer``, so MMAction2's VideoMAE checkpoints
load directly and its ``LearningRateDecayOptimizerConstructor`` recognises it (the class name
contains ``VisionTransformer``).
"""

from __future__ import annotations

from mmaction.registry import MODELS
from mmengine.model.weight_init import initialize

from mats_lab.models.vit import VideoViT


@MODELS.register_module()
class MATSVisionTransformer(VideoViT):
    """VideoMAE ViT with motion-aware token selection; see :class:`VideoViT` for the args.

    Input ``(B, C, T, H, W)``; output ``(B, D)`` pooled features (fine-tuning) or
    ``(B, K, D)`` tokens (``use_mean_pooling=False``).

    Args:
        init_cfg: MMEngine init config, e.g.
            ``dict(type='Pretrained', checkpoint='pretrain.pth', prefix='backbone.')``.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_channels: int = 3,
        embed_dims: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        init_values: float = 0.0,
        num_frames: int = 16,
        tubelet_size: int = 2,
        use_mean_pooling: bool = True,
        use_learnable_pos_emb: bool = False,
        keep_ratio: float = 1.0,
        drop_at_test: bool = True,
        candidate_ratio: float | None = None,
        seed: int | None = None,
        scorer: str = "embedding",
        temporal_center: bool = False,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            in_channels=in_channels,
            embed_dims=embed_dims,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
            init_values=init_values,
            num_frames=num_frames,
            tubelet_size=tubelet_size,
            use_mean_pooling=use_mean_pooling,
            use_learnable_pos_emb=use_learnable_pos_emb,
            keep_ratio=keep_ratio,
            drop_at_test=drop_at_test,
            candidate_ratio=candidate_ratio,
            seed=seed,
            scorer=scorer,
            temporal_center=temporal_center,
        )
        self.init_cfg = init_cfg
        self.is_init = False

    def init_weights(self) -> None:
        """Load ``init_cfg`` weights when given (the default init ran at construction)."""
        if self.init_cfg is not None:
            initialize(self, self.init_cfg)
        self.is_init = True
