"""Every file in mm_configs/ loads, builds its model, and refuses unknown keys."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (REPO / "mm_configs").glob("*.py"))


def test_there_are_configs_in_mmaction_grammar():
    names = [p.name for p in CONFIGS]
    for algo, stage in [
        ("mats", "pretrain"),
        ("videomae", "pretrain"),
        ("mats", "finetune"),
        ("videomae", "finetune"),
    ]:
        assert any(
            n.startswith(algo + "_vit-base-p16_" + stage) and "kinetics-400" in n for n in names
        ), (algo, stage)
    for dataset in ("ucf101", "sthv2"):
        # the MATS / full-token pair (UCF101 also has frame-selection variants: -afs, -pixdiff, ...)
        pair = [n for n in names if dataset in n and "finetune" in n and "p16_" in n]
        assert len(pair) == 2, pair


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_builds_its_model(mm, path):
    from mmaction.registry import MODELS

    from mats_lab.trial.configs import load_config

    cfg = load_config(path)
    assert "mats_lab.mm" in cfg.custom_imports["imports"]
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    # the pipelines only name registered transforms
    from mmaction.registry import TRANSFORMS

    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        if cfg.get(loader):
            for step in cfg[loader]["dataset"]["pipeline"]:
                assert TRANSFORMS.get(step["type"]) is not None, step["type"]


def test_unknown_override_key_raises_naming_it(mm):
    from mats_lab.trial.configs import UnknownConfigKey, load_config

    path = REPO / "mm_configs" / "mats_vit-base-p16_finetune_16x4x1_kinetics-400.py"
    with pytest.raises(UnknownConfigKey, match="modle.backbone"):
        load_config(path, {"modle.backbone.keep_ratio": 0.5})
    with pytest.raises(UnknownConfigKey, match="train_pipeline.99"):
        load_config(path, {"train_pipeline.99.clip_len": 8})
    cfg = load_config(
        path, {"model.backbone.keep_ratio": 0.5, "model.backbone.drop_path_rate": 0.2}
    )
    assert cfg.model.backbone.keep_ratio == 0.5
    # a misspelt constructor argument passes the path check but the build refuses it
    cfg = load_config(path, {"model.backbone.keep_ratoi": 0.5})
    from mmaction.registry import MODELS

    with pytest.raises(TypeError, match="keep_ratoi"):
        MODELS.build(cfg.model)


VIT_B = {
    "mats_vit-base-p16_pretrain_16x4x1_kinetics-400.py": ("train_gmacs", 19.8),
    "videomae_vit-base-p16_pretrain_16x4x1_kinetics-400.py": ("train_gmacs", 35.4),
    "mats_vit-base-p16_finetune_16x4x1_kinetics-400.py": ("test_gmacs", 98.0),
    "videomae_vit-base-p16_finetune_16x4x1_kinetics-400.py": ("test_gmacs", 180.3),
}


@pytest.mark.parametrize("name", sorted(VIT_B))
def test_flops_cli_matches_the_papers_figures(mm, name):
    from mats_lab.cli.main import app

    torch.set_num_threads(2)
    result = CliRunner().invoke(app, ["flops", str(REPO / "mm_configs" / name), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    key, expected = VIT_B[name]
    assert figures[key] == pytest.approx(expected, rel=0.01)
    assert set(figures) == {"train_gmacs", "test_gmacs", "params_m"}
    assert figures["params_m"] == pytest.approx(86.5 if "finetune" in name else 94.2, rel=0.01)


def test_flops_cli_reports_bad_override(mm):
    from mats_lab.cli.main import app

    path = REPO / "mm_configs" / "mats_vit-base-p16_finetune_16x4x1_kinetics-400.py"
    result = CliRunner().invoke(app, ["flops", str(path), "--cfg-options", "modle.x=1"])
    assert result.exit_code == 2
    assert "modle.x" in result.output


TINY_FINETUNE = sorted(
    p for p in CONFIGS if "tiny" in p.name and "finetune" in p.name and "smooth" not in p.name
)
SMOOTH = sorted(p for p in CONFIGS if "motion-synth-smooth" in p.name)


@pytest.mark.parametrize("path", SMOOTH, ids=lambda p: p.name)
def test_smooth_configs_read_their_own_datasets_without_flips(mm, path):
    """The smooth benchmark is the few-label regime without augmentation: fine-tuning on the
    labelled `smooth` set, pre-training on the separate `smooth-unlabelled` one (seed 1)."""
    from mats_lab.data.synth import PRESETS
    from mats_lab.trial.configs import load_config

    cfg = load_config(path)
    train = cfg.train_dataloader.dataset
    assert not [s for s in train.pipeline if s["type"] == "MotionFlip"]
    if "pretrain" in path.name:
        assert (train.synth_size, train.synth_seed) == ("smooth-unlabelled", 1)
        assert train.ann_file.startswith(train.synth_root)
        assert cfg.model.backbone.img_size == PRESETS["smooth-unlabelled"].height
    else:
        assert (train.synth_size, train.synth_seed) == ("smooth", 0)
        assert cfg.model.cls_head.num_classes == PRESETS["smooth"].num_classes
        assert cfg.model.backbone.img_size == PRESETS["smooth"].height
    assert PRESETS[train.synth_size].style == "smooth"
    assert cfg.model.backbone.temporal_center


@pytest.mark.parametrize("path", TINY_FINETUNE, ids=lambda p: p.name)
def test_tiny_finetuning_flips_in_training_only_with_the_synth_label_maps(mm, path):
    from mats_lab.data.synth import FLIP_LABEL_MAPS, PRESETS
    from mats_lab.trial.configs import load_config

    cfg = load_config(path)
    flips = [s for s in cfg.train_dataloader.dataset.pipeline if s["type"] == "MotionFlip"]
    assert {s["axis"]: s["label_map"] for s in flips} == dict.fromkeys(
        FLIP_LABEL_MAPS, "motion-synth"
    )
    assert cfg.model.cls_head.num_classes == PRESETS[cfg.synth_size].num_classes
    for loader in ("val_dataloader", "test_dataloader"):
        assert all(s["type"] != "MotionFlip" for s in cfg[loader].dataset.pipeline)
    assert cfg.model.backbone.temporal_center is True


def test_static_control_config_reads_the_static_dataset_everywhere(mm):
    from mats_lab.data.synth import static_root
    from mats_lab.trial.configs import load_config

    base = load_config(REPO / "mm_configs" / "videomae_vit-tiny-p8_finetune_8x4x1_motion-synth.py")
    static = load_config(
        REPO / "mm_configs" / "videomae_vit-tiny-p8_finetune_8x4x1_motion-synth-static.py"
    )
    for split in ("train", "val", "test"):
        moving = base[f"{split}_dataloader"].dataset
        frozen = static[f"{split}_dataloader"].dataset
        assert frozen.static is True and moving.static is False
        root = Path(frozen.synth_root)
        assert root.resolve() == static_root(Path(moving.synth_root)).resolve()
        assert Path(frozen.ann_file).resolve() == (root / f"{split}_list_videos.txt").resolve()
        assert Path(frozen.data_prefix["video"]).resolve() == root.resolve()
        assert frozen.pipeline == moving.pipeline
    assert static.model == base.model
    assert static.optim_wrapper == base.optim_wrapper


@pytest.mark.parametrize(
    ("config", "epochs", "warmup", "cosine"),
    [
        ("videomae_vit-base-p16_finetune_16x4x1_kinetics-400.py", 20, 1, (1, 20, 19)),
        ("videomae_vit-base-p16_finetune_16x4x1_kinetics-400.py", 100, 5, (5, 100, 95)),
        ("mats_vit-base-p16_pretrain_16x4x1_kinetics-400.py", 100, 5, (5, 100, 95)),
        ("mats_vit-base-p16_pretrain_16x4x1_kinetics-400.py", 1600, 80, (80, 1600, 1520)),
        ("mats_vit-base-p16_pretrain_16x4x1_kinetics-400.py", 10, 1, (1, 10, 9)),
    ],
)
def test_epochs_knob_scales_the_warm_up_in_proportion(config, epochs, warmup, cosine):
    from mats_lab.trial.configs import load_config
    from mats_lab.trial.knobs import apply_knobs

    cfg = load_config(Path(__file__).resolve().parents[1] / "mm_configs" / config)
    apply_knobs(cfg, {"epochs": epochs})
    linear, cos = cfg.param_scheduler
    assert cfg.train_cfg.max_epochs == epochs
    assert (linear.begin, linear.end) == (0, warmup)
    assert (cos.begin, cos.end, cos.T_max) == cosine


def test_epochs_knob_drops_a_schedule_left_with_nothing_to_do():
    from mats_lab.trial.configs import load_config
    from mats_lab.trial.knobs import apply_knobs

    cfg = load_config(
        Path(__file__).resolve().parents[1]
        / "mm_configs/mats_vit-base-p16_pretrain_16x4x1_kinetics-400.py"
    )
    applied = apply_knobs(cfg, {"epochs": 1})
    assert [s.type for s in cfg.param_scheduler] == ["LinearLR"]
    assert "param_scheduler.1 (dropped)" in applied["epochs"]
