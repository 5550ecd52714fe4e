"""CodecMotionVectors in MMAction2 pipelines, the 4-value data preprocessor, and the tiny
motion-vector config: it builds and trains one step on generated H.264 clips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from video_clips import moving_frames, write_h264

REPO = Path(__file__).resolve().parents[1]
MV_CONFIG = REPO / "mm_configs" / "mats_vit-tiny-p8-mv_finetune_8x4x1_motion-synth.py"
RIGHT_2PX = (0, 2)
MEAN4 = [123.675, 116.28, 103.53, 0.0]
STD4 = [58.395, 57.12, 57.375, 1.0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mvt")
    return write_h264(folder / "right.mp4", moving_frames(*RIGHT_2PX), b_frames=False)


def decoded(mm, path: Path, frame_inds) -> dict:
    from mats_lab.mm.transforms import CheckedVideoDecode, CheckedVideoInit

    results = {"filename": str(path), "frame_inds": np.asarray(frame_inds), "start_index": 0}
    return CheckedVideoDecode()(CheckedVideoInit()(results))


def test_appends_the_motion_map_as_a_float_fourth_channel(mm, clip: Path) -> None:
    from mats_lab.data.motion_vectors import motion_magnitude
    from mats_lab.mm.motion_transforms import CodecMotionVectors

    idx = [0, 3, 4, 9]
    results = decoded(mm, clip, idx)
    colour = np.stack(results["imgs"])  # (4, H, W, 3) uint8
    results = CodecMotionVectors()(results)
    clip4 = np.stack(results["imgs"])
    assert clip4.shape == (*colour.shape[:3], 4) and clip4.dtype == np.float32
    np.testing.assert_array_equal(clip4[..., :3], colour.astype(np.float32))
    np.testing.assert_array_equal(clip4[..., 3], motion_magnitude(clip, idx))
    assert clip4[1:, ..., 3].max() == pytest.approx(2.0, abs=0.25)


def test_misplaced_transform_names_the_file(mm, clip: Path) -> None:
    from mmaction.datasets.transforms import Resize

    from mats_lab.mm.motion_transforms import CodecMotionVectors

    resized = Resize(scale=(48, 48), keep_ratio=False)(decoded(mm, clip, [1, 2]))
    with pytest.raises(ValueError, match=r"right\.mp4.*before any resize"):
        CodecMotionVectors()(resized)
    results = decoded(mm, clip, [1, 2])
    results["frame_inds"] = np.array([1, 2, 3])
    with pytest.raises(ValueError, match=r"right\.mp4: 2 imgs but 3 frame_inds"):
        CodecMotionVectors()(results)


GEOMETRY = {
    "resize": [dict(type="Resize", scale=(-1, 64)), dict(type="CenterCrop", crop_size=56)],
    "random-resized-crop": [
        dict(type="RandomResizedCrop", area_range=(0.3, 0.6)),
        dict(type="Resize", scale=(40, 40), keep_ratio=False),
        dict(type="Flip", flip_ratio=1.0),
    ],
    "three-crop": [dict(type="Resize", scale=(-1, 48)), dict(type="ThreeCrop", crop_size=48)],
}


@pytest.mark.parametrize("name", sorted(GEOMETRY))
def test_motion_channel_follows_mmaction_geometry(mm, clip: Path, name: str) -> None:
    """Colour and motion channels of the 4-channel clip come out exactly as the same
    transforms (same random draws) give them for 3-channel clips of colour / motion alone."""
    from mmcv.transforms import Compose

    from mats_lab.mm.motion_transforms import CodecMotionVectors

    steps = [
        *GEOMETRY[name],
        dict(type="FormatShape", input_format="NCTHW"),
        dict(type="PackActionInputs"),
    ]
    pipeline = Compose(steps)
    idx = np.arange(8)
    base = CodecMotionVectors()(decoded(mm, clip, idx))
    base.update(num_clips=1, clip_len=idx.size, modality="RGB")
    four = np.stack(base["imgs"])  # (T, H, W, 4)

    def run(imgs: np.ndarray) -> torch.Tensor:
        # mmaction's crops and flips draw from the global numpy and random generators
        np.random.seed(0)  # noqa: NPY002
        random.seed(0)
        results = {k: v for k, v in base.items() if k != "imgs"}
        results["imgs"] = list(imgs)
        return pipeline(results)["inputs"]  # (n_views, C, T, h, w)

    got = run(four)
    colour = run(four[..., :3])
    motion = run(np.repeat(four[..., 3:], 3, axis=-1))
    assert got.shape[1] == 4 and got.shape[0] == (3 if name == "three-crop" else 1)
    assert got.shape[2] == idx.size
    torch.testing.assert_close(got[:, :3], colour)
    torch.testing.assert_close(got[:, 3], motion[:, 0])
    assert got[:, 3].max() > 1.0  # the moving square survived


def test_data_preprocessor_normalises_colour_and_leaves_motion(mm) -> None:
    from mmaction.registry import MODELS

    preprocessor = MODELS.build(
        dict(type="ActionDataPreprocessor", mean=MEAN4, std=STD4, format_shape="NCTHW")
    )
    clip4 = torch.rand(1, 4, 2, 8, 8) * 255  # (n_views, C+1, T, H, W) as PackActionInputs
    out = preprocessor({"inputs": [clip4, clip4.clone()], "data_samples": None})["inputs"]
    assert out.shape == (2, 1, 4, 2, 8, 8)
    mean = torch.tensor(MEAN4[:3]).view(3, 1, 1, 1)
    std = torch.tensor(STD4[:3]).view(3, 1, 1, 1)
    torch.testing.assert_close(out[0, 0, :3], (clip4[0, :3] - mean) / std)
    torch.testing.assert_close(out[0, 0, 3], clip4[0, 3])


def _tiny_dataset(folder: Path) -> Path:
    """Four 32-frame 96x96 H.264 clips (two motions, two seeds) and a VideoDataset list."""
    lines = []
    for label, motion in enumerate([(0, 2), (3, 0)]):
        for seed in range(2):
            frames = moving_frames(*motion, seed=seed, num_frames=11)  # there and back again
            frames = np.concatenate([frames, frames[::-1], frames])[:32]
            write_h264(folder / f"clip{label}{seed}.mp4", frames, b_frames=True)
            lines.append(f"clip{label}{seed}.mp4 {label}")
    ann = folder / "list.txt"
    ann.write_text("\n".join(lines) + "\n")
    return ann


def test_mv_config_trains_one_step_on_generated_clips(mm, tmp_path: Path) -> None:
    from mmaction.registry import MODELS
    from mmengine.optim import OptimWrapper
    from mmengine.runner import Runner

    from mats_lab.trial.configs import load_config

    ann = _tiny_dataset(tmp_path)
    cfg = load_config(MV_CONFIG)
    assert cfg.model.backbone.scorer == "motion_vectors"
    loaders = {}
    for split in ("train_dataloader", "val_dataloader"):
        loader = cfg[split].copy()
        pipeline = loader.dataset.pipeline
        assert "CodecMotionVectors" in [step["type"] for step in pipeline]
        loader.update(num_workers=0, persistent_workers=False, batch_size=2)
        loader.dataset = dict(
            type="VideoDataset",
            ann_file=str(ann),
            data_prefix=dict(video=str(tmp_path)),
            pipeline=pipeline,
            test_mode=split != "train_dataloader",
        )
        loaders[split] = Runner.build_dataloader(loader, seed=0)

    model = MODELS.build(cfg.model)
    seen: list[tuple[int, ...]] = []
    model.backbone.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    batch = next(iter(loaders["train_dataloader"]))
    assert tuple(batch["inputs"][0].shape) == (1, 4, 8, 64, 64)  # (views, C+1, T, H, W)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    model.train()
    losses = model.train_step(batch, optim)
    assert torch.isfinite(losses["loss"])
    model.eval()
    with torch.no_grad():
        predictions = model.val_step(next(iter(loaders["val_dataloader"])))
    assert len(predictions) == 2 and predictions[0].pred_score.shape == (10,)
    assert seen and all(shape[1:3] == (4, 8) for shape in seen)
