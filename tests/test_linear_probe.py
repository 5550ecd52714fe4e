"""The linear-probe benchmark (benchmarks/linear_probe.py): the pure parts on constructed
features with a known answer, the checkpoint errors (exit 2, the file named), and one run of
the script's main on the tiny generated dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from benchmark_module import load_benchmark

REPO = Path(__file__).resolve().parents[1]
PRETRAIN = REPO / "mm_configs" / "mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"


@pytest.fixture(scope="module")
def probe():
    return load_benchmark("linear_probe")


def blobs(
    generator: torch.Generator, classes: int, per_class: int, dims: int, spread: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(classes * per_class, dims)`` Gaussian blobs around fixed centres, and their labels."""
    centres = 4.0 * torch.eye(classes, dims)
    labels = torch.arange(classes).repeat_interleave(per_class)
    noise = spread * torch.randn(len(labels), dims, generator=generator)
    return centres[labels] + noise + 3.0, labels  # an offset the standardisation removes


# -- pure parts -------------------------------------------------------------------------------


def test_pool_tokens_keeps_the_magnitude_that_the_mean_cancels(probe) -> None:
    tokens = torch.zeros(2, 6, 3)
    tokens[0, 0], tokens[0, 1] = torch.tensor([1.0, -2.0, 0.0]), torch.tensor([-1.0, 2.0, 0.0])
    pooled = probe.pool_tokens(tokens)  # (2, 6)
    assert pooled.shape == (2, 6)
    assert torch.equal(pooled[0, :3], torch.zeros(3))  # the signed pair cancels in the mean
    assert torch.allclose(pooled[0, 3:], torch.tensor([2 / 6, 4 / 6, 0.0]))
    assert torch.equal(pooled[1], torch.zeros(6))


def test_standardise_uses_the_train_statistics(probe) -> None:
    train = torch.tensor([[1.0, 5.0], [3.0, 5.0]])  # second feature constant
    val = torch.tensor([[2.0, 7.0], [5.0, 5.0]])
    z_train, z_val = probe.standardise(train, val)
    assert torch.allclose(z_train, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(z_val, torch.tensor([[0.0, 2.0], [3.0, 0.0]]))  # constant: centred


def test_separable_blobs_are_probed_perfectly(probe) -> None:
    generator = torch.Generator().manual_seed(0)
    train_x, train_y = blobs(generator, 10, 20, 16, 0.3)
    val_x, val_y = blobs(generator, 10, 20, 16, 0.3)
    train_x, val_x = probe.standardise(train_x, val_x)
    weight, bias = probe.fit_probe(train_x, train_y, 10, l2=1e-3, steps=200, seed=0)
    assert weight.shape == (10, 16) and bias.shape == (10,)
    assert probe.accuracy(weight, bias, train_x, train_y) == 1.0
    assert probe.accuracy(weight, bias, val_x, val_y) == 1.0


def test_noise_features_stay_near_chance_on_held_out_data(probe) -> None:
    generator = torch.Generator().manual_seed(1)
    train_x = torch.randn(300, 32, generator=generator)
    train_y = torch.randint(0, 10, (300,), generator=generator)
    val_x = torch.randn(3000, 32, generator=generator)
    val_y = torch.randint(0, 10, (3000,), generator=generator)
    train_x, val_x = probe.standardise(train_x, val_x)
    weight, bias = probe.fit_probe(train_x, train_y, 10, l2=1e-3, steps=200, seed=0)
    assert probe.accuracy(weight, bias, train_x, train_y) > 0.3  # it fits the noise...
    assert abs(probe.accuracy(weight, bias, val_x, val_y) - 0.1) < 0.03  # ...which says nothing


def test_fit_is_reproducible(probe) -> None:
    generator = torch.Generator().manual_seed(2)
    x, y = blobs(generator, 4, 10, 8, 2.0)
    first = probe.fit_probe(x, y, 4, seed=3)
    again = probe.fit_probe(x, y, 4, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


# -- checkpoints and the script ---------------------------------------------------------------


def save_model(mm, config: Path, path: Path, seed: int, options: dict | None = None) -> Path:
    """Build ``config``'s model (seeded) and save its state dict the way MMEngine does."""
    from mmaction.registry import MODELS

    from mats_lab.trial.configs import load_config

    torch.manual_seed(seed)
    model = MODELS.build(load_config(config, options).model)
    torch.save({"meta": {}, "state_dict": model.state_dict()}, path)
    return path


def test_missing_checkpoint_exits_2_naming_it(probe, tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere" / "epoch_20.pth"
    assert probe.main(["none", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_checkpoint_without_backbone_exits_2_naming_it(probe, mm, tmp_path, capsys) -> None:
    foreign = tmp_path / "foreign.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2, 2)}}, foreign)
    assert probe.main([str(foreign)]) == 2
    err = capsys.readouterr().err
    assert str(foreign) in err and "backbone" in err


def test_checkpoint_of_another_backbone_exits_2(probe, mm, tmp_path, capsys) -> None:
    wider = save_model(
        mm, probe.CONFIG, tmp_path / "wide.pth", 0, {"model.backbone.embed_dims": 64}
    )
    assert probe.main([str(wider)]) == 2
    err = capsys.readouterr().err
    assert str(wider) in err and "another shape" in err


def test_main_on_the_tiny_dataset(probe, mm, tmp_path, capsys) -> None:
    """``none``, a recogniser saved at the same seeded initialisation (the very same
    figures) and a pre-trainer's checkpoint, on the tiny preset (8 train, 4 val clips)."""
    root = tmp_path / "ms"
    options = []
    for split in ("train", "val"):
        key = f"{split}_dataloader.dataset"
        options += [
            f"{key}.synth_root={root}",
            f"{key}.synth_size=tiny",
            f"{key}.ann_file={root}/{split}_list_videos.txt",
            f"{key}.data_prefix.video={root}",
        ]
    same = save_model(mm, probe.CONFIG, tmp_path / "same.pth", 0)
    pretrained = save_model(mm, PRETRAIN, tmp_path / "pretrain.pth", 5)
    out = tmp_path / "probe.json"
    argv = ["none", str(same), str(pretrained), "--json", str(out), "--steps", "50"]
    for option in options:
        argv += ["--cfg-options", option]
    assert probe.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("none  train top-1 ")
    assert "(features 256, 8 + 4 clips, " in lines[0]
    records = json.loads(out.read_text())
    assert [r["name"] for r in records] == ["none", str(same), str(pretrained)]
    for record in records:
        assert (record["feature_dims"], record["train_clips"], record["val_clips"]) == (256, 8, 4)
        assert 0.0 <= record["val_top1"] <= 1.0
    assert records[0]["checkpoint"] is None
    assert records[0]["train_top1"] == records[1]["train_top1"]
    assert records[0]["val_top1"] == records[1]["val_top1"]
