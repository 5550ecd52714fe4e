"""The smooth style of motion-synth: the same classes and trajectories as the cluttered one,
drawn as Gaussian blobs on a soft background, so that masked-autoencoder targets become
predictable from their neighbours; its presets build, record their style, and folders written
before styles existed still read as cluttered ones."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmark_module import load_benchmark
from test_synth import motion_checks

from mats_lab.data import synth
from mats_lab.data.synth_smooth import sample_smooth_scene

FRAMES, SIDE, CLASSES = 12, 32, 10  # the smooth preset's clips and classes


def smooth(seed: int, label: int, static: bool = False) -> synth.Scene:
    rng = np.random.default_rng(seed)
    return sample_smooth_scene(rng, label, FRAMES, SIDE, SIDE, static=static)


@pytest.mark.parametrize("name", synth.CLASSES[:CLASSES])
def test_a_smooth_clip_moves_like_its_label(name: str) -> None:
    label = synth.CLASSES.index(name)
    for seed in range(4):
        s = smooth(seed, label)
        checks = motion_checks(synth.render_scene(s), synth.mover_masks(s, min_cover=0.5))
        assert checks[name], (name, seed)
        assert [k for k, ok in checks.items() if ok and k in synth.CLASSES[:CLASSES]] == [name]


def test_only_the_blob_moves_and_the_background_has_no_texture() -> None:
    for seed in range(6):
        s = smooth(seed, seed % CLASSES)
        frames = synth.render_scene(s).astype(int)
        changed = np.abs(np.diff(frames, axis=0)).max(-1) > 1  # (T-1, H, W): > 1 grey level
        masks = synth.mover_masks(s)
        assert not (changed & ~(masks[1:] | masks[:-1])).any()  # nothing else changes
        assert s.jitterers == () and {d.shape for d in s.distractors} == {"blob"}
        # texture = second differences along a row: under 0.002 of the range on average,
        # against over 0.03 for the cluttered style's stripes, blocks and noise
        assert np.abs(np.diff(s.background, 2, axis=1)).mean() < 0.002
        cluttered = synth.sample_background(np.random.default_rng(seed), SIDE, SIDE)
        assert np.abs(np.diff(cluttered, 2, axis=1)).mean() > 0.03


def test_the_static_smooth_control_is_one_frame_of_its_motion_twin() -> None:
    moving, frozen = smooth(3, 0), smooth(3, 0, static=True)
    still = synth.render_scene(frozen)
    assert (still == still[:1]).all()
    assert frozen.frozen_frame is not None
    np.testing.assert_array_equal(still[0], synth.render_scene(moving)[frozen.frozen_frame])


def test_smooth_targets_are_predictable_where_cluttered_ones_are_not() -> None:
    """The reason for the style: centred tubelet-2, patch-8 targets (the smooth configs'),
    predicted by interpolating the true tokens before and after them."""
    oracle = load_benchmark("target_oracle")
    setting = oracle.Setting(2, 8, True)

    def clips(render) -> torch.Tensor:  # (16, 3, 8, 32, 32)
        video = np.stack([render(seed)[:8] for seed in range(16)]).astype(np.float32)
        return torch.from_numpy(video).permute(0, 4, 1, 2, 3)

    smooth_video = clips(lambda seed: synth.render_scene(smooth(seed, seed % CLASSES)))
    cluttered_video = clips(
        lambda seed: synth.render_clip(seed, seed % CLASSES, frames=8, height=SIDE, width=SIDE)
    )
    smooth_raw, _ = oracle.score(smooth_video, setting)["interpolate"]
    cluttered_raw, _ = oracle.score(cluttered_video, setting)["interpolate"]
    assert smooth_raw > 0.15 and cluttered_raw < 0.0


def test_smooth_presets_build_and_record_their_style(tmp_path: Path) -> None:
    root = synth.ensure_dataset(tmp_path / "sm", seed=0, size="smooth")
    meta = json.loads((root / "meta.json").read_text())
    assert meta["params"]["style"] == "smooth"
    assert meta["counts"] == {"train": 20, "val": 500, "test": 500}
    video = synth.read_video(root / "videos" / "train" / "train_00000.mp4")
    assert video.shape == (FRAMES, SIDE, SIDE, 3)
    unlabelled = synth.resolve_params(1, "smooth-unlabelled")
    assert unlabelled.style == "smooth" and unlabelled.counts()["train"] == 2000
    with pytest.raises(ValueError, match="style: folder has 'smooth', asked 'cluttered'"):
        synth.check_meta(root, replace(synth.resolve_params(0, "smooth"), style="cluttered"))


def test_a_folder_written_before_styles_reads_as_cluttered(tmp_path: Path) -> None:
    root = synth.ensure_dataset(tmp_path / "ms", seed=0, size="tiny")
    meta_path = root / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["params"]["style"]  # as every folder built before the smooth style
    meta_path.write_text(json.dumps(meta))
    assert synth.ensure_dataset(root, seed=0, size="tiny") == root  # accepted, not rebuilt
    assert "style" not in json.loads(meta_path.read_text())["params"]
