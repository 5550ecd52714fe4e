"""Multiply-accumulates per clip, counted from what actually runs.

``torch.utils.flop_counter.FlopCounterMode`` sees the dropped tokens, so MATS's saving is
measured, not assumed. Its CPU attention kernel (``_scaled_dot_product_flash_attention_for_cpu``)
has no formula in torch 2.13, so the CUDA kernels' formulas are mapped onto it here; without
that every attention matmul would be missed. Papers call MACs "FLOPs": we print MACs
(FlopCounterMode's count / 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from mats_lab.mm.pretrain import MATSPretrainer
from mats_lab.models.vit import VideoViT


def _cpu_attention(
    query: object,
    key: object,
    value: object,
    *args: object,
    out_shape: object = None,
    **kwargs: object,
) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_attention_backward(
    grad_out: object,
    query: object,
    key: object,
    value: object,
    *args: object,
    out_shape: object = None,
    **kwargs: object,
) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


_aten = torch.ops.aten
CPU_ATTENTION_FORMULAS = {
    _aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention,
    _aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward,
}


@dataclass
class ModelCost:
    """Cost of one clip: ``train_gmacs`` (train-mode forward), ``test_gmacs`` (one test view,
    eval mode), ``params_m`` (millions of parameters), and the clip shapes used."""

    train_gmacs: float
    test_gmacs: float
    params_m: float
    train_clip: tuple[int, ...]
    test_clip: tuple[int, ...]

    def as_dict(self) -> dict:
        return asdict(self)


def count_macs(fn: object, *args: object) -> float:
    """MACs of ``fn(*args)`` under ``no_grad``, in G."""
    counter = FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FORMULAS)
    with counter, torch.no_grad():
        fn(*args)  # type: ignore[operator]
    return counter.get_total_flops() / 2e9


def count_train_macs(loss_fn: Callable[[], torch.Tensor]) -> float:
    """MACs of one forward and backward, ``loss_fn().backward()``, in G (what a training
    step multiplies; the optimizer update has no matrix products)."""
    counter = FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FORMULAS)
    with counter:
        loss_fn().backward()
    return counter.get_total_flops() / 2e9


def find_backbone(model: nn.Module) -> VideoViT:
    """The MATS/VideoMAE ViT inside a recogniser or pre-trainer."""
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, VideoViT):
        raise TypeError(
            f"{type(model).__name__} has no MATSVisionTransformer backbone; mats-lab flops "
            "counts MATS / VideoMAE ViT models"
        )
    return backbone


def clip_shapes(backbone: VideoViT) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(train_clip, test_clip)`` as ``(1, C, T, H, W)``: with frame selection the clip holds
    the candidate frames, ``t_s * round(candidate_ratio * t)``."""
    channels = backbone.in_channels + (backbone.scorer == "motion_vectors")
    height = backbone.grid_size[0] * backbone.patch_size
    width = backbone.grid_size[1] * backbone.patch_size
    frames = backbone.num_frames
    if backbone.candidate_ratio is not None:
        frames = backbone.tubelet_size * round(backbone.candidate_ratio * backbone.num_tubelets)
    shape = (1, channels, frames, height, width)
    return shape, shape


def model_cost(model: nn.Module) -> ModelCost:
    """Count one clip through a built model (a ``Recognizer3D`` or :class:`MATSPretrainer`).

    The random clip is made on the model's device with its floating dtype (a model on CUDA
    after ``Runner`` moved it, a bf16 model, or the ``meta`` device, where nothing is
    computed and the count still comes out).
    """
    backbone = find_backbone(model)
    train_clip, test_clip = clip_shapes(backbone)
    weight = backbone.patch_embed.projection.weight
    # A seeded generator on the CPU, then a copy: the same clip on every device, and the
    # caller's global random state untouched.
    generator = torch.Generator().manual_seed(0)

    def run(clip_shape: tuple[int, ...]) -> None:
        clip = torch.randn(clip_shape, generator=generator)
        clip = clip.to(device=weight.device, dtype=weight.dtype)
        if isinstance(model, MATSPretrainer):
            model(clip, mode="tensor")
        else:  # a recogniser: backbone, then the head on its features
            head = getattr(model, "cls_head", None)
            feats = backbone(clip)
            if head is not None:
                head(feats)

    was_training = model.training
    try:
        model.train()
        train = count_macs(run, train_clip)
        model.eval()
        test = count_macs(run, test_clip)
    finally:
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return ModelCost(train, test, params, train_clip, test_clip)


def config_cost(cfg: Config) -> ModelCost:
    """Build ``cfg.model`` and count it (imports ``custom_imports`` through the config)."""
    init_default_scope(cfg.get("default_scope", "mmaction"))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    return model_cost(model)
