"""The ViT-B fine-tuning optimizer: layer-wise LR decay 0.75 (one scale per depth), no weight
decay on biases and norms, built exactly as the Runner builds it from the config."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "mm_configs/mats_vit-base-p16_finetune_16x4x1_ucf101.py"


@pytest.fixture(scope="module")
def groups(mm):
    import torch
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    cfg = Config.fromfile(str(CONFIG))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    table = {}
    for group in wrapper.optimizer.param_groups:
        for param in group["params"]:
            table[names[id(param)]] = group
    assert len(table) == len(names)  # every parameter is in exactly one group
    return table, cfg.optim_wrapper.optimizer.lr, wrapper


def test_one_scale_per_depth_075_per_layer(groups):
    table, base, _ = groups
    scales = sorted({round(g["lr_scale"], 12) for g in table.values()}, reverse=True)
    assert scales == pytest.approx([0.75**k for k in range(14)])  # head .. patch embedding
    for name, group in table.items():
        if name.startswith("backbone.blocks."):
            depth = int(name.split(".")[2])
            assert group["lr_scale"] == pytest.approx(0.75 ** (12 - depth)), name
        elif name.startswith("backbone.patch_embed"):
            assert group["lr_scale"] == pytest.approx(0.75**13), name
        else:  # fc_norm, the head
            assert group["lr_scale"] == pytest.approx(1.0), name
        assert group["lr"] == pytest.approx(base * group["lr_scale"])


def test_no_weight_decay_on_biases_and_norms(groups):
    table, _, _ = groups
    for name, group in table.items():
        one_dim = name.endswith(".bias") or "norm" in name or name.endswith(("q_bias", "v_bias"))
        assert group["weight_decay"] == (0.0 if one_dim else 0.05), name


def test_the_wrapper_is_bf16_autocast(groups):
    _, _, wrapper = groups
    import torch

    assert type(wrapper).__name__ == "AutocastOptimWrapper"
    assert wrapper.cast_dtype == torch.bfloat16
