"""The four training steps the bench compares, built from the same registered models that
``mats-lab train`` trains.

- ``videomae_pretrain``: :class:`~mats_lab.mm.pretrain.MATSPretrainer` with tube masking,
  ``visible_ratio`` 0.1, the decoder on all ``N`` tokens;
- ``mats_pretrain``: the same model with ``masking='mats'``, candidates ``keep_ratio`` 0.3,
  ``visible_ratio`` 0.1, the decoder on the ``K`` candidates only;
- ``full_finetune`` / ``mats_finetune``: MMAction2's ``Recognizer3D`` with a
  ``MATSVisionTransformer`` keeping all tokens / the top 60 %, ``TimeSformerHead``.

A step is ``zero_grad`` → loss → ``backward`` → fused AdamW ``step``: the fused optimizer
updates a parameter group in one kernel, where torch's default loops over the parameters
(about 60 ms of a 330 ms ViT-S MATS pre-training step on one CPU thread) — a fixed cost in
both arms of a pair that would pull every ratio toward 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.registry import init_default_scope
from torch import Tensor, nn

from mats_lab.models.mae import choose_tokens
from mats_lab.models.vit import VideoViT
from mats_lab.trial.bench.spec import PRETRAIN_KEEP, VISIBLE_RATIO, WORKLOADS, BenchSpec
from mats_lab.trial.flops import find_backbone

__all__ = ["Workload", "build_workload", "make_optimizer", "token_counts"]

_PREPROCESSOR = dict(
    type="ActionDataPreprocessor",
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    format_shape="NCTHW",
)


@dataclass
class Workload:
    """A model, its optimizer and one fixed batch.

    Attributes:
        name: a key of :data:`~mats_lab.trial.bench.spec.WORKLOADS`.
        kind: ``pretrain`` or ``finetune``.
        model: the MMEngine model, in train mode, on ``device``.
        optimizer: fused AdamW over all its parameters.
        video: ``(B, C, T, H, W)`` normalised clips on ``device``.
        data_samples: labelled samples for fine-tuning, ``None`` for pre-training.
        amp: run the loss under bfloat16 autocast.
    """

    name: str
    kind: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    video: Tensor
    data_samples: list | None
    amp: bool = False

    @property
    def backbone(self) -> VideoViT:
        return find_backbone(self.model)

    @property
    def keep_ratio(self) -> float:
        return self.backbone.keep_ratio

    def loss(self) -> Tensor:
        """The scalar training loss of the batch (forward only)."""
        with torch.autocast(self.video.device.type, torch.bfloat16, enabled=self.amp):
            if self.kind == "pretrain":
                out = self.model(self.video, mode="loss")
                return out["loss"]
            losses = self.model(self.video[:, None], self.data_samples, mode="loss")
            return torch.stack([v for k, v in losses.items() if k.startswith("loss")]).sum()

    def step(self) -> None:
        """One training step."""
        self.optimizer.zero_grad(set_to_none=True)
        self.loss().backward()
        self.optimizer.step()


def make_optimizer(params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW as in the recipes (β 0.9/0.95, weight decay 0.05), fused where torch has it."""
    try:
        return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, fused=True)
    except (RuntimeError, ValueError):  # a device / dtype without the fused kernel
        return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)


def _model_config(spec: BenchSpec, name: str) -> dict:
    kind, arg = WORKLOADS[name]
    d = spec.dims
    backbone = dict(
        type="MATSVisionTransformer",
        img_size=spec.size,
        patch_size=d.patch_size,
        embed_dims=d.embed_dims,
        depth=d.depth,
        num_heads=d.num_heads,
        mlp_ratio=4,
        num_frames=spec.frames,
        tubelet_size=spec.tubelet_size,
    )
    if kind == "pretrain":
        return dict(
            type="MATSPretrainer",
            backbone=dict(backbone, keep_ratio=PRETRAIN_KEEP if arg == "mats" else 1.0),
            masking=arg,
            visible_ratio=VISIBLE_RATIO,
            decoder_dims=d.decoder_dims,
            decoder_depth=d.decoder_depth,
            decoder_heads=d.decoder_heads,
            seed=spec.seed,
            data_preprocessor=_PREPROCESSOR,
        )
    return dict(
        type="Recognizer3D",
        backbone=dict(backbone, keep_ratio=arg, drop_path_rate=0.1, use_mean_pooling=True),
        cls_head=dict(
            type="TimeSformerHead",
            num_classes=d.num_classes,
            in_channels=d.embed_dims,
            init_std=0.02,
            label_smooth_eps=0.1,
            average_clips="prob",
        ),
        data_preprocessor=_PREPROCESSOR,
    )


def build_workload(spec: BenchSpec, name: str) -> Workload:
    """Build workload ``name`` for a resolved ``spec``; weights and batch from ``spec.seed``."""
    if spec.frames is None or spec.size is None or spec.batch is None:
        spec = spec.resolved()
    assert spec.frames is not None and spec.size is not None and spec.batch is not None
    init_default_scope("mmaction")
    device = torch.device(spec.device)
    torch.manual_seed(spec.seed)
    model = MODELS.build(_model_config(spec, name)).to(device).train()
    gen = torch.Generator().manual_seed(spec.seed)
    video = torch.randn((spec.batch, 3, spec.frames, spec.size, spec.size), generator=gen)
    samples = None
    kind = WORKLOADS[name][0]
    if kind == "finetune":
        labels = torch.randint(spec.dims.num_classes, (spec.batch,), generator=gen)
        samples = [ActionDataSample().set_gt_label(int(y)) for y in labels]
    optimizer = make_optimizer(list(model.parameters()))
    return Workload(name, kind, model, optimizer, video.to(device), samples, spec.amp)


def token_counts(workload: Workload) -> dict[str, int]:
    """Tokens per clip through each part: ``all`` (``N``), ``encoder``, and for pre-training
    ``decoder`` (visible + targets) and ``targets``; computed by the selection code itself."""
    backbone = workload.backbone
    t = backbone.num_tubelets
    h, w = backbone.grid_size
    num = t * h * w
    if workload.kind == "finetune":
        kept = int(backbone.keep_ratio * num) if backbone.keep_ratio < 1.0 else num
        return {"all": num, "encoder": kept}
    masking = workload.model.masking
    scores = torch.rand(1, num)
    visible, target = choose_tokens(
        masking, scores, (t, h, w), backbone.keep_ratio, VISIBLE_RATIO, None, 1, scores.device
    )
    counts = {"all": num, "encoder": visible.shape[1], "targets": target.shape[1]}
    counts["decoder"] = counts["encoder"] + counts["targets"]
    return counts
