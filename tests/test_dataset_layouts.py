"""The real-dataset configs read MMAction2's usual layouts.

For Kinetics-400, UCF101, HMDB51 and Something-Something v2, a tiny stand-in of the layout
MMAction2's data preparation (``tools/data/<dataset>``) produces is generated in a temporary
folder: 2 s clips in the dataset's folder structure, container and codec, under the
annotation file names MMAction2 uses. The mats-lab configs then build their datasets and
pipelines from their default paths (run from the folder holding ``data/``), or from
overridden ones, and one sample of each split is fetched. Raw frames (``RobustRawframeDataset`` +
``RawFrameDecode``) are checked for UCF101 (``img_{:05}.jpg``) and SSv2 (``{:05}.jpg``) with
child configs written exactly as the README's recipe says. No model is built.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from video_clips import write_video

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "mm_configs"
FRAMES = 40  # 2 s at 20 fps
HEIGHT, WIDTH = 48, 64


def clip_frames(seed: int) -> np.ndarray:
    """``(FRAMES, HEIGHT, WIDTH, 3)`` uint8: a bright square crossing a noisy background."""
    rng = np.random.default_rng(seed)
    frames = np.repeat(rng.integers(0, 120, (1, HEIGHT, WIDTH, 3), dtype=np.uint8), FRAMES, 0)
    for t in range(FRAMES):
        x = t % (WIDTH - 12)
        frames[t, 18:30, x : x + 12] = 230
    return frames


# dataset -> (config, {split: (video folder, list file)}, [(relative path, label)], codec)
VIDEO_LAYOUTS = {
    "kinetics400": (
        "videomae_vit-base-p16_finetune_16x4x1_kinetics-400.py",
        {
            "train": ("videos_train", "kinetics400_train_list_videos.txt"),
            "val": ("videos_val", "kinetics400_val_list_videos.txt"),
        },
        [
            ("abseiling/0wR5jVB-WPk_000417_000427.mp4", 0),
            ("zumba/-0ZzTVj3Bdw_000031_000041.mp4", 399),
        ],
        "libx264",
    ),
    "ucf101": (
        "videomae_vit-base-p16_finetune_16x4x1_ucf101.py",
        {
            "train": ("videos", "ucf101_train_split_1_videos.txt"),
            "val": ("videos", "ucf101_val_split_1_videos.txt"),
        },
        [
            ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0),
            ("YoYo/v_YoYo_g25_c05.avi", 100),
        ],
        "mpeg4",  # UCF101 ships XviD (MPEG-4 part 2) in AVI
    ),
    "hmdb51": (
        "videomae_vit-base-p16_finetune_16x4x1_hmdb51.py",
        {
            "train": ("videos", "hmdb51_train_split_1_videos.txt"),
            "val": ("videos", "hmdb51_val_split_1_videos.txt"),
        },
        [
            ("brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 0),
            ("wave/winKen_wave_u_cm_np1_ri_bad_1.avi", 50),
        ],
        "mpeg4",  # HMDB51 ships DivX (MPEG-4 part 2) in AVI
    ),
    "sthv2": (
        "videomae_vit-base-p16_finetune_16x2x1_sthv2.py",
        {
            "train": ("videos", "sthv2_train_list_videos.txt"),
            "val": ("videos", "sthv2_val_list_videos.txt"),
        },
        [("1.webm", 0), ("220847.webm", 173)],
        "libvpx-vp9",  # SSv2 ships VP9 in WebM (the container states no frame count)
    ),
}


def write_video_layout(root: Path, dataset: str) -> None:
    """``root/data/<dataset>/...`` as MMAction2's preparation leaves it (videos)."""
    _, splits, clips, codec = VIDEO_LAYOUTS[dataset]
    base = root / "data" / dataset
    for video_dir, list_file in splits.values():
        for i, (rel, _label) in enumerate(clips):
            path = base / video_dir / rel
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, clip_frames(i), codec)
        (base / list_file).write_text("".join(f"{rel} {label}\n" for rel, label in clips))


@pytest.fixture(scope="module")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``data/`` holding all four video layouts."""
    root = tmp_path_factory.mktemp("layouts")
    for dataset in VIDEO_LAYOUTS:
        write_video_layout(root, dataset)
    return root


def fetch(cfg, loader: str) -> tuple[dict, object]:
    from mmaction.registry import DATASETS

    dataset = DATASETS.build(cfg[loader]["dataset"])
    assert len(dataset) == 2
    return dataset[1], dataset


# (loader, expected views) for the pipelines of the 16-frame configs: train 1 view, val one
# centre crop; SSv2's test pipeline: 2 clips x 3 crops.
@pytest.mark.parametrize("dataset", sorted(VIDEO_LAYOUTS))
@pytest.mark.parametrize("loader", ["train_dataloader", "val_dataloader"])
def test_configs_read_the_mmaction2_video_layout_at_their_default_paths(
    mm, data_home: Path, monkeypatch: pytest.MonkeyPatch, dataset: str, loader: str
) -> None:
    from mats_lab.trial.configs import load_config

    config, _, clips, _ = VIDEO_LAYOUTS[dataset]
    monkeypatch.chdir(data_home)  # the configs' paths are relative: data/<dataset>/...
    cfg = load_config(CONFIGS / config)
    sample, _ = fetch(cfg, loader)
    assert tuple(sample["inputs"].shape) == (1, 3, 16, 224, 224)  # (views, C, T, H, W)
    assert int(sample["data_samples"].gt_label) == clips[1][1]


def test_sthv2_test_pipeline_gives_two_clips_by_three_crops(
    mm, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mats_lab.trial.configs import load_config

    monkeypatch.chdir(data_home)
    cfg = load_config(CONFIGS / VIDEO_LAYOUTS["sthv2"][0])
    sample, _ = fetch(cfg, "test_dataloader")
    assert tuple(sample["inputs"].shape) == (6, 3, 16, 224, 224)


def test_roots_elsewhere_via_the_expanded_keys(mm, data_home: Path) -> None:
    """A dataset outside the working directory: override the expanded dataloader keys
    (what ``--cfg-options`` takes); ``data_root`` variables are resolved at parse time."""
    from mats_lab.trial.configs import load_config

    base = data_home / "data" / "kinetics400"
    cfg = load_config(
        CONFIGS / "mats_vit-base-p16_finetune_16x4x1_kinetics-400.py",
        {
            "train_dataloader.dataset.ann_file": str(base / "kinetics400_train_list_videos.txt"),
            "train_dataloader.dataset.data_prefix.video": str(base / "videos_train"),
        },
    )
    sample, dataset = fetch(cfg, "train_dataloader")
    assert dataset.get_data_info(0)["filename"] == str(
        base / "videos_train" / "abseiling" / "0wR5jVB-WPk_000417_000427.mp4"
    )
    assert tuple(sample["inputs"].shape) == (1, 3, 16, 224, 224)


# -- raw frames --------------------------------------------------------------------------------

# The README's raw-frame recipe as child configs: dataset type, list files, frame folder and
# template, and the pipelines with CheckedVideoInit dropped and CheckedVideoDecode replaced by
# RawFrameDecode (everything else as the video config).
UCF101_RAWFRAMES = """
_base_ = ['{base}']

dataset_type = 'RobustRawframeDataset'
data_root = 'data/ucf101/rawframes'
ann_file_train = 'data/ucf101/ucf101_train_split_1_rawframes.txt'
ann_file_val = 'data/ucf101/ucf101_val_split_1_rawframes.txt'
filename_tmpl = 'img_{{:05}}.jpg'
train_pipeline = [
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=1),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='VideoRandAugment', magnitude=7, num_ops=4),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=1, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=5, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file=ann_file_train, filename_tmpl=filename_tmpl,
    data_prefix=dict(_delete_=True, img=data_root), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file=ann_file_val, filename_tmpl=filename_tmpl,
    data_prefix=dict(_delete_=True, img=data_root), pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file=ann_file_val, filename_tmpl=filename_tmpl,
    data_prefix=dict(_delete_=True, img=data_root), pipeline=test_pipeline))
"""

STHV2_RAWFRAMES = """
_base_ = ['{base}']

dataset_type = 'RobustRawframeDataset'
data_root = 'data/sthv2/rawframes'
ann_file_train = 'data/sthv2/sthv2_train_list_rawframes.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_rawframes.txt'
filename_tmpl = '{{:05}}.jpg'
train_pipeline = [
    dict(type='UniformSample', clip_len=16, num_clips=1),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='VideoRandAugment', magnitude=7, num_ops=4),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='UniformSample', clip_len=16, num_clips=1, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file=ann_file_train, filename_tmpl=filename_tmpl,
    data_prefix=dict(_delete_=True, img=data_root), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type=dataset_type, ann_file=ann_file_val, filename_tmpl=filename_tmpl,
    data_prefix=dict(_delete_=True, img=data_root), pipeline=val_pipeline))
"""

# dataset -> (child config text, video config, [(frame dir, label)], frame file template)
RAWFRAME_LAYOUTS = {
    "ucf101": (
        UCF101_RAWFRAMES,
        "videomae_vit-base-p16_finetune_16x4x1_ucf101.py",
        [("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01", 0), ("YoYo/v_YoYo_g25_c05", 100)],
        "img_{:05}.jpg",
        ["ucf101_train_split_1_rawframes.txt", "ucf101_val_split_1_rawframes.txt"],
    ),
    "sthv2": (
        STHV2_RAWFRAMES,
        "videomae_vit-base-p16_finetune_16x2x1_sthv2.py",
        [("1", 0), ("220847", 173)],
        "{:05}.jpg",
        ["sthv2_train_list_rawframes.txt", "sthv2_val_list_rawframes.txt"],
    ),
}


def write_rawframe_layout(root: Path, dataset: str) -> Path:
    """``root/data/<dataset>/rawframes/<dir>/<template>`` (1-based, as extractors number
    frames), the ``frame_dir total_frames label`` lists, and the child config."""
    text, video_config, clips, template, lists = RAWFRAME_LAYOUTS[dataset]
    base = root / "data" / dataset
    for i, (frame_dir, _label) in enumerate(clips):
        folder = base / "rawframes" / frame_dir
        folder.mkdir(parents=True)
        for t, frame in enumerate(clip_frames(i), start=1):
            cv2.imwrite(str(folder / template.format(t)), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    for list_file in lists:
        lines = "".join(f"{d} {FRAMES} {label}\n" for d, label in clips)
        (base / list_file).write_text(lines)
    config = root / f"rawframes_{dataset}.py"
    config.write_text(text.format(base=CONFIGS / video_config))
    return config


@pytest.mark.parametrize("dataset", sorted(RAWFRAME_LAYOUTS))
@pytest.mark.parametrize("loader", ["train_dataloader", "val_dataloader"])
def test_rawframe_recipe_reads_the_mmaction2_frame_layout(
    mm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dataset: str, loader: str
) -> None:
    from mats_lab.trial.configs import load_config

    config = write_rawframe_layout(tmp_path, dataset)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(config)
    spec = cfg[loader]["dataset"]
    assert spec["type"] == "RobustRawframeDataset" and set(spec["data_prefix"]) == {"img"}
    steps = [step["type"] for step in spec["pipeline"]]
    assert "RawFrameDecode" in steps and not any(s.startswith("CheckedVideo") for s in steps)
    sample, data = fetch(cfg, loader)
    assert data.get_data_info(1)["total_frames"] == FRAMES
    assert tuple(sample["inputs"].shape) == (1, 3, 16, 224, 224)
    assert int(sample["data_samples"].gt_label) == RAWFRAME_LAYOUTS[dataset][2][1][1]
