"""The three frame-selection variants of one study run from file to loss: adaptive selection
in the model (METHOD §4), pixel-difference selection in the pipeline, uniform sampling."""

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {  # config -> frames the pipeline delivers
    "mats_vit-tiny-p8-afs_finetune_8x4x1_motion-synth.py": 12,
    "mats_vit-tiny-p8-pixdiff_finetune_8x4x1_motion-synth.py": 8,
    "mats_vit-tiny-p8-uniform_finetune_8x4x1_motion-synth.py": 8,
}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """A folder for the ``small`` preset: the first variant generates it, the others (which
    only read it) find it there."""
    return tmp_path_factory.mktemp("frame-selection") / "data"


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_runs_from_file_to_loss(mm, small_data, name):
    from mmaction.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate

    from mats_lab.trial.configs import load_config

    root = small_data
    options = {}
    for split in ("train", "val"):
        key = f"{split}_dataloader.dataset"
        options.update(
            {
                f"{key}.synth_root": str(root),
                f"{key}.synth_size": "small",
                f"{key}.ann_file": str(root / f"{split}_list_videos.txt"),
                f"{key}.data_prefix.video": str(root),
            }
        )
    cfg = load_config(REPO / "mm_configs" / name, options)
    model = MODELS.build(cfg.model)
    for split, training in (("train", True), ("val", False)):
        dataset = DATASETS.build(cfg[f"{split}_dataloader"]["dataset"])
        batch = pseudo_collate([dataset[0], dataset[1]])
        assert batch["inputs"][0].shape == (1, 3, VARIANTS[name], 64, 64)
        data = model.data_preprocessor(batch, training)
        model.train(training)
        if training:
            losses = model(**data, mode="loss")
            assert torch.isfinite(losses["loss_cls"])
        else:
            with torch.no_grad():
                samples = model(**data, mode="predict")
            assert samples[0].pred_score.shape == (10,)  # the default preset's classes
    if name.startswith("mats_vit-tiny-p8-afs"):
        assert model.backbone.candidate_ratio == 1.5
