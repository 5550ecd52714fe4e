"""Every real-data config skips bad training samples and fails loudly on bad test samples.

"Real data" = every config in mm_configs/ whose training set is not the generated
motion-synth data (which is built by mats-lab and cannot hold a bad file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "mm_configs").glob("*.py"))


def _load(path: Path) -> Config:
    return Config.fromfile(str(path))


def _real_data_configs() -> list[Path]:
    found = []
    for path in CONFIGS:
        cfg = _load(path)
        train = cfg.get("train_dataloader")
        if train and train["dataset"]["type"] != "MotionSynthDataset":
            found.append(path)
    return found


REAL = _real_data_configs()


def test_the_real_data_configs_are_found() -> None:
    names = {p.name for p in REAL}
    assert "videomae_vit-base-p16_finetune_16x4x1_kinetics-400.py" in names
    assert "mats_vit-base-p16_pretrain_16x4x1_kinetics-400.py" in names
    assert any("ucf101" in n for n in names) and any("hmdb51" in n for n in names)
    assert len(REAL) >= 12, sorted(names)


def _decoders(pipeline: list[dict]) -> list[dict]:
    return [step for step in pipeline if step["type"] == "CheckedVideoInit"]


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_training_skips_bad_samples_and_reports_them(mm: object, path: Path) -> None:
    from mmaction.registry import DATASETS, HOOKS

    from mats_lab.mm.robust_dataset import BadSampleReportHook, SkipBadSamplesMixin

    cfg = _load(path)
    train = cfg.train_dataloader.dataset
    dataset_class = DATASETS.get(train.type)
    assert issubclass(dataset_class, SkipBadSamplesMixin), train.type
    assert train.get("skip_bad_samples") is True
    hooks = [HOOKS.get(h["type"]) for h in cfg.get("custom_hooks", [])]
    assert BadSampleReportHook in hooks
    assert _decoders(train.pipeline), "the training pipeline does not decode with checks"
    for step in _decoders(train.pipeline):
        assert step.get("backend", "auto") == "auto"


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_validation_and_test_sets_do_not_skip(mm: object, path: Path) -> None:
    cfg = _load(path)
    for key in ("val_dataloader", "test_dataloader"):
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = loader["dataset"]
        assert dataset.get("test_mode") is True, key
        assert not dataset.get("skip_bad_samples", False), key
        for step in _decoders(dataset["pipeline"]):
            assert step.get("backend", "auto") == "auto"
