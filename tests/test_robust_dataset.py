"""skip_bad_samples: a training run survives missing, empty and corrupt videos, the skipped
count crosses DataLoader workers, and BadSampleReportHook reports it per epoch."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from video_clips import moving_frames, write_h264

from mats_lab.data.decode import VideoDecodeError

REPO = Path(__file__).resolve().parents[1]
GOOD = [f"good{i}.mp4" for i in range(4)]
BAD = ["missing.mp4", "empty.mp4", "corrupt.mp4"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four good 8-frame H.264 clips and three bad entries, interleaved in ``list.txt``."""
    root = tmp_path_factory.mktemp("robust")
    for i, name in enumerate(GOOD):
        frames = moving_frames(0, 2, seed=i, num_frames=8)[:, :64, :64]
        write_h264(root / name, np.ascontiguousarray(frames), b_frames=True)
    (root / "empty.mp4").touch()
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    order = [GOOD[0], BAD[0], GOOD[1], BAD[1], GOOD[2], BAD[2], GOOD[3]]
    (root / "list.txt").write_text("".join(f"{n} {i % 2}\n" for i, n in enumerate(order)))
    return root


PIPELINE = [
    dict(type="CheckedVideoInit"),
    dict(type="SampleFrames", clip_len=4, frame_interval=1, num_clips=1),
    dict(type="CheckedVideoDecode"),
    dict(type="FormatShape", input_format="NCTHW"),
    dict(type="PackActionInputs", meta_keys=("filename",)),
]


def build(folder: Path, skip: bool, test_mode: bool = False, ann: str = "list.txt"):
    from mmaction.registry import DATASETS

    return DATASETS.build(
        dict(
            type="RobustVideoDataset",
            ann_file=str(folder / ann),
            data_prefix=dict(video=str(folder)),
            pipeline=PIPELINE,
            test_mode=test_mode,
            skip_bad_samples=skip,
        )
    )


class RecordingLogger:
    def __init__(self) -> None:
        self.records: list[tuple[int, str]] = []

    def log(self, level: int, message: str) -> None:
        self.records.append((level, message))


def test_skipped_samples_are_counted_across_workers_and_reported_per_epoch(mm, folder):
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    from mats_lab.mm.robust_dataset import BadSampleReportHook

    dataset = build(folder, skip=True)
    assert len(dataset) == 7
    loader = DataLoader(
        dataset, batch_size=1, num_workers=2, collate_fn=pseudo_collate, persistent_workers=True
    )
    logger = RecordingLogger()
    runner = SimpleNamespace(epoch=0, train_dataloader=loader, logger=logger)
    hook = BadSampleReportHook()
    for epoch in range(2):
        names = []
        for batch in loader:
            sample = batch["data_samples"][0]
            assert tuple(batch["inputs"][0].shape) == (1, 3, 4, 64, 64)
            names.append(Path(sample.metainfo["filename"]).name)
        assert len(names) == 7 and set(names) <= set(GOOD)  # bad ones were replaced
        # the marks were set in the worker processes and are read here, in the parent
        assert dataset.bad_samples_in_epoch() == 3
        assert sorted(Path(f).name for f in dataset.bad_sample_files()) == sorted(BAD)
        runner.epoch = epoch
        hook.after_train_epoch(runner)
        assert dataset.bad_samples_in_epoch() == 0  # reset by the hook
        assert dataset.bad_samples_seen() == 3
    assert [level for level, _ in logger.records] == [logging.WARNING] * 2
    for epoch, (_, message) in enumerate(logger.records, start=1):
        assert message.startswith(f"3 bad samples skipped in epoch {epoch} ")
        assert all(name in message for name in BAD)


def test_replacements_are_drawn_from_samples_not_known_bad(mm, folder):
    dataset = build(folder, skip=True)
    for index in (1, 3, 5):  # missing, empty, corrupt: each replaced by a good sample
        assert Path(dataset[index]["data_samples"].metainfo["filename"]).name in GOOD
    assert dataset.bad_samples_in_epoch() == 3
    drawn = {dataset._rand_another() for _ in range(200)}
    assert drawn == {0, 2, 4, 6}


@pytest.mark.parametrize("index, name", [(1, "missing.mp4"), (3, "empty.mp4"), (5, "corrupt.mp4")])
def test_without_skipping_the_error_names_the_file(mm, folder, index, name):
    dataset = build(folder, skip=False)
    with pytest.raises(VideoDecodeError, match=re.escape(name)) as info:
        dataset[index]
    assert any(name in note for note in info.value.__notes__)


def test_test_mode_never_skips(mm, folder):
    dataset = build(folder, skip=True, test_mode=True)
    assert dataset[0] is not None
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        dataset[1]


def test_pipeline_bugs_are_not_skipped(mm, folder):
    from mmaction.registry import DATASETS

    dataset = DATASETS.build(
        dict(
            type="RobustVideoDataset",
            ann_file=str(folder / "list.txt"),
            data_prefix=dict(video=str(folder)),
            pipeline=[dict(type="CheckedVideoDecode")],  # no CheckedVideoInit: a KeyError
            skip_bad_samples=True,
        )
    )
    with pytest.raises(KeyError, match="put CheckedVideoInit before"):
        dataset[0]


def test_all_bad_names_the_annotation_file(mm, folder, tmp_path):
    (tmp_path / "bad.txt").write_text(f"{folder}/missing.mp4 0\n{folder}/empty.mp4 1\n")
    dataset = build(tmp_path, skip=True, ann="bad.txt")
    with pytest.raises(RuntimeError, match=r"bad\.txt: every sample failed to load"):
        dataset[0]


def test_unknown_argument_is_refused(mm, folder):
    from mmaction.registry import DATASETS

    with pytest.raises(TypeError, match="skip_bad_sample"):
        DATASETS.build(
            dict(
                type="RobustVideoDataset",
                ann_file=str(folder / "list.txt"),
                pipeline=PIPELINE,
                skip_bad_sample=True,
            )
        )


def test_runner_logs_the_count_after_every_epoch(mm, folder, tmp_path):
    """End to end with MMEngine's Runner, 2 epochs, 2 workers started afresh every epoch
    (persistent ones are covered above; a Runner holding persistent workers also stalls the
    garbage collection that frees it by 2 x 5 s of worker-join timeouts, in whichever test
    that happens to run)."""
    from mmengine.runner import Runner

    cfg = dict(
        default_scope="mmaction",
        work_dir=str(tmp_path / "work"),
        model=dict(
            type="Recognizer3D",
            backbone=dict(
                type="MATSVisionTransformer",
                img_size=64,
                patch_size=16,
                embed_dims=32,
                depth=1,
                num_heads=2,
                num_frames=4,
                tubelet_size=2,
            ),
            cls_head=dict(type="TimeSformerHead", num_classes=2, in_channels=32),
            data_preprocessor=dict(
                type="ActionDataPreprocessor",
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                format_shape="NCTHW",
            ),
        ),
        train_dataloader=dict(
            batch_size=2,
            num_workers=2,
            persistent_workers=False,
            sampler=dict(type="DefaultSampler", shuffle=True),
            dataset=dict(
                type="RobustVideoDataset",
                ann_file=str(folder / "list.txt"),
                data_prefix=dict(video=str(folder)),
                pipeline=PIPELINE,
                skip_bad_samples=True,
            ),
        ),
        train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        default_hooks=dict(
            logger=dict(type="LoggerHook", interval=1),
            checkpoint=dict(type="CheckpointHook", interval=100),
        ),
        custom_hooks=[dict(type="BadSampleReportHook")],
        randomness=dict(seed=0),
        log_level="INFO",
    )
    runner = Runner.from_cfg(cfg)
    runner.train()
    log = next((tmp_path / "work").glob("*/*.log")).read_text()
    for epoch in (1, 2):
        assert f"3 bad samples skipped in epoch {epoch} " in log
    # every skip is logged, but MMLogger shows an identical warning once per process
    assert log.count("skipping bad sample") >= 3


def test_a_real_data_config_skips_in_training_and_names_the_file_in_validation(mm, folder):
    # The UCF101 config as shipped (RobustVideoDataset, skip_bad_samples in training only),
    # its lists pointed at the folder above; the short clips loop to fill 16x4 clips.
    from mmaction.registry import DATASETS
    from mmengine.config import Config

    cfg = Config.fromfile(
        str(REPO / "mm_configs" / "videomae_vit-base-p16_finetune_16x4x1_ucf101.py")
    )
    for key in ("train_dataloader", "val_dataloader"):
        cfg[key].dataset.ann_file = str(folder / "list.txt")
        cfg[key].dataset.data_prefix = dict(video=str(folder))
    train = DATASETS.build(cfg.train_dataloader.dataset)
    for index in (1, 3, 5):  # missing, empty, corrupt: replaced by good samples
        assert tuple(train[index]["inputs"].shape) == (1, 3, 16, 224, 224)
    assert train.bad_samples_in_epoch() == 3
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert val[0] is not None
    with pytest.raises(VideoDecodeError, match="empty.mp4"):
        val[3]


def test_a_tagged_index_loads_by_its_entropy_alone(mm, folder):
    # EpochTaggedSampler's indices: the same (seed, epoch, index) loads the same clip whatever
    # the process's global random state (a resumed run, another worker), and leaves it as it was.
    import torch

    from mats_lab.mm.samplers import EpochIndex

    dataset = build(folder, skip=True)

    def load(index: int, epoch: int, global_seed: int) -> tuple[str, torch.Tensor]:
        np.random.seed(global_seed)  # noqa: NPY002  (SampleFrames draws from it)
        before = np.random.get_state()[1].copy()  # noqa: NPY002
        out = dataset[EpochIndex(index, seed=0, epoch=epoch)]
        assert (np.random.get_state()[1] == before).all()  # noqa: NPY002
        return Path(out["data_samples"].metainfo["filename"]).name, out["inputs"]

    name, first = load(0, 0, global_seed=1)
    assert name == GOOD[0]
    assert torch.equal(load(0, 0, global_seed=2)[1], first)
    assert any(not torch.equal(load(0, e, 1)[1], first) for e in range(1, 8))  # epochs differ
    # a bad sample's replacement is drawn from the same entropy: fixed per epoch, varied across
    replacements = [load(1, e, 0)[0] for e in range(12)]
    assert all(load(1, e, 5)[0] == r for e, r in enumerate(replacements[:4]))
    assert set(replacements) <= set(GOOD) and len(set(replacements)) > 1
