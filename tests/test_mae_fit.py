"""The pre-training fit benchmark (benchmarks/mae_fit.py): every variant's config builds the
model it names with the schedule asked for, MMEngine's scalars are averaged per epoch, bad
arguments exit 2, and the positive control (tokens predictable from the visible ones) drives
``explained`` towards 1, so the diagnostic can read high."""

from __future__ import annotations

import json

import pytest
from benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def fit():
    return load_benchmark("mae_fit")


@pytest.mark.parametrize("name", ["mats", "tube", "random50-patch8", "random50-lr1e-4"])
def test_variant_configs_build_what_they_name(fit, mm, tmp_path, name) -> None:
    from mmaction.registry import MODELS
    from mmengine.config import Config

    path = tmp_path / f"{name}.py"
    path.write_text(fit.config_text(fit.VARIANTS[name], epochs=7, seed=3))
    cfg = Config.fromfile(path)
    variant = fit.VARIANTS[name]
    assert cfg.model.masking == variant.masking
    assert cfg.model.visible_ratio == variant.visible_ratio
    backbone = {**fit.STUDY_BACKBONE, **dict(variant.backbone)}
    for key, value in backbone.items():
        assert cfg.model.backbone[key] == value, key
    assert cfg.train_cfg.max_epochs == 7 and cfg.param_scheduler[1].T_max == 6
    assert cfg.randomness.seed == 3
    if variant.lr is not None:
        assert cfg.optim_wrapper.optimizer.lr == variant.lr and not cfg.auto_scale_lr.enable
    model = MODELS.build(cfg.model)
    assert model.backbone.patch_size == backbone["patch_size"]


def test_epoch_means_of_mmengines_scalars(fit, tmp_path) -> None:
    path = tmp_path / "scalars.json"
    lines = [
        {"epoch": 1, "step": 5, "explained": 0.1, "loss": 1.0},
        {"epoch": 1, "step": 10, "explained": 0.3, "loss": 0.8},
        {"epoch": 2, "step": 15, "explained": 0.5, "loss": 0.6},
        {"step": 15, "lr": 0.1},  # a line without the key or the epoch
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    assert fit.scalar_epoch_means(path, "explained") == pytest.approx({1: 0.2, 2: 0.5})


def test_bad_arguments_exit_2(fit, capsys) -> None:
    assert fit.main(["--variants", "tube,nonsense"]) == 2
    assert "nonsense" in capsys.readouterr().err
    assert fit.main(["--variants", "tube", "--epochs", "1"]) == 2


def test_the_positive_control_learns(fit, mm) -> None:
    curve = dict(fit.control(steps=300))
    assert curve[0] < 0.1  # untrained: not better than zeros
    assert curve[300] > 0.5  # predictable tokens: most of the error removed
