"""The learning rate follows the total batch (devices x per-device batch) from each recipe's
base at 256, through MMEngine's own ``Runner.scale_lr``, for 1, 2 and 8 processes."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FINETUNE = REPO / "mm_configs/videomae_vit-base-p16_finetune_16x4x1_kinetics-400.py"
PRETRAIN = REPO / "mm_configs/mats_vit-base-p16_pretrain_16x4x1_kinetics-400.py"
SSV2 = REPO / "mm_configs/videomae_vit-base-p16_finetune_16x2x1_sthv2.py"
TINY = REPO / "mm_configs/mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"


@pytest.fixture(scope="module")
def models(mm):
    """One built model per config (ViT-B builds take seconds; the LR does not depend on it)."""
    import torch
    from mmaction.registry import MODELS
    from mmengine.config import Config

    torch.manual_seed(0)
    return {path: MODELS.build(Config.fromfile(str(path)).model) for path in (FINETUNE, PRETRAIN)}


def starting_lr(path, world_size, knobs, model):
    from mats_lab.trial.configs import load_config
    from mats_lab.trial.knobs import apply_knobs
    from mats_lab.trial.lr import lr_summary, runner_lrs

    cfg = load_config(path)
    apply_knobs(cfg, knobs)
    lrs = runner_lrs(cfg, world_size, model)
    assert lr_summary(cfg, world_size)["lr"] == pytest.approx(max(lrs))
    return max(lrs)  # the head's group: layer-decay scale 1


@pytest.mark.parametrize("world_size", [1, 2, 8])
@pytest.mark.parametrize("batch", [16, 8])
def test_fine_tuning_lr_is_1e3_per_256_clips(models, world_size, batch):
    lr = starting_lr(FINETUNE, world_size, {"batch_size": batch}, models[FINETUNE])
    assert lr == pytest.approx(1e-3 * world_size * batch / 256)


@pytest.mark.parametrize("world_size", [1, 2, 8])
@pytest.mark.parametrize("batch", [24, 12])
def test_pre_training_lr_is_1e3_per_256_clips(models, world_size, batch):
    lr = starting_lr(PRETRAIN, world_size, {"batch_size": batch}, models[PRETRAIN])
    assert lr == pytest.approx(1e-3 * world_size * batch / 256)


def test_the_published_8_gpu_recipes(models):
    """EVEREST's 8 GPUs: 24 clips each in pre-training, 16 in fine-tuning."""
    assert starting_lr(PRETRAIN, 8, {}, models[PRETRAIN]) == pytest.approx(7.5e-4)
    assert starting_lr(FINETUNE, 8, {}, models[FINETUNE]) == pytest.approx(5e-4)


def test_lr_knob_sets_the_base_at_256(models):
    lr = starting_lr(FINETUNE, 2, {"lr": 2e-3, "batch_size": 16}, models[FINETUNE])
    assert lr == pytest.approx(2e-3 * 32 / 256)


def test_ssv2_base_is_half_of_kinetics(models):
    from mats_lab.trial.configs import load_config
    from mats_lab.trial.lr import lr_summary

    summary = lr_summary(load_config(SSV2), 8)
    assert summary["base_lr"] == pytest.approx(5e-4) and summary["lr"] == pytest.approx(2.5e-4)


def test_minimum_and_warm_up_lr_scale_with_the_lr(mm):
    """The official scripts scale min_lr and warmup_lr by batch / 256 too: the configs write
    them as ratios of the scaled LR."""
    from mats_lab.trial.configs import load_config

    for path, min_lr in ((PRETRAIN, 1e-5), (FINETUNE, 1e-6)):
        cfg = load_config(path)
        warmup, cosine = cfg.param_scheduler
        assert warmup.start_factor * cfg.optim_wrapper.optimizer.lr == pytest.approx(1e-6)
        assert cosine.eta_min_ratio * cfg.optim_wrapper.optimizer.lr == pytest.approx(min_lr)
        assert "eta_min" not in cosine


def test_tiny_recipe_base_is_one_process_at_16(mm):
    from mats_lab.trial.configs import load_config
    from mats_lab.trial.lr import lr_summary

    cfg = load_config(TINY)
    assert lr_summary(cfg, 1)["lr"] == pytest.approx(1.5e-3)
    assert lr_summary(cfg, 2)["lr"] == pytest.approx(3e-3)
