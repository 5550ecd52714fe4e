"""The generated motion-synth dataset: deterministic, labelled by motion only, valid MMAction2
annotation lists, built once and atomically, reachable from configs and the CLI."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mats_lab.cli import data as data_cli
from mats_lab.data import synth
from mats_lab.data.flips import FLIP_AXES, check_label_map, flip_frames

FRAMES, SIDE = 12, 48  # small clips for the pure-function tests


def scene(seed: int, label: int, **kwargs: object) -> synth.Scene:
    rng = np.random.default_rng(seed)
    return synth.sample_scene(rng, label, FRAMES, SIDE, SIDE, **kwargs)  # type: ignore[arg-type]


def build_tiny(root: Path, **kwargs: object) -> Path:
    return synth.ensure_dataset(root, seed=0, size="tiny", **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- determinism


def test_same_seed_renders_identical_pixels_and_other_seeds_differ() -> None:
    seq = synth.clip_seed(7, "train", 3)
    a = synth.render_clip(seq, 2, frames=FRAMES, height=SIDE, width=SIDE)
    b = synth.render_clip(synth.clip_seed(7, "train", 3), 2, frames=FRAMES, height=SIDE, width=SIDE)
    c = synth.render_clip(synth.clip_seed(8, "train", 3), 2, frames=FRAMES, height=SIDE, width=SIDE)
    assert a.shape == (FRAMES, SIDE, SIDE, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_two_builds_with_one_seed_are_identical(tmp_path: Path) -> None:
    one, two = build_tiny(tmp_path / "one"), build_tiny(tmp_path / "two")
    other = synth.ensure_dataset(tmp_path / "other", seed=1, size="tiny")
    for name in ("train_list_videos.txt", "val_list_videos.txt", "classes.txt", "meta.json"):
        assert (one / name).read_text() == (two / name).read_text()
    first = (one / "train_list_videos.txt").read_text().split()[0]
    np.testing.assert_array_equal(synth.read_video(one / first), synth.read_video(two / first))
    assert not np.array_equal(synth.read_video(one / first), synth.read_video(other / first))


def test_a_written_clip_decodes_to_exactly_its_yuv420p_frames_every_time(tmp_path: Path) -> None:
    # The encoder is free to write another stream for the same frames (x264 did, about one
    # encode in 60); the decoded pixels must not depend on it.
    import av

    frames = synth.render_clip(
        synth.clip_seed(0, "test", 50), 0, frames=FRAMES, height=SIDE, width=SIDE
    )
    expected = np.stack(
        [
            av.VideoFrame.from_ndarray(f, format="rgb24")
            .reformat(format="yuv420p")
            .to_ndarray(format="rgb24")
            for f in frames
        ]
    )
    for i in range(4):
        synth.write_video(tmp_path / f"{i}.mp4", frames, 8)
        np.testing.assert_array_equal(synth.read_video(tmp_path / f"{i}.mp4"), expected)


# ---------------------------------------------------------------- the class is the motion


def test_without_jitter_only_the_mover_changes_pixels() -> None:
    for label in range(len(synth.CLASSES)):
        s = scene(label, label, moving_distractors=0)
        frames, masks = synth.render_scene(s).astype(int), synth.mover_masks(s)
        changed = np.abs(np.diff(frames, axis=0)).sum(-1) > 0  # (T-1, H, W)
        on_mover = masks[1:] | masks[:-1]
        assert changed.any()
        assert not (changed & ~on_mover).any(), synth.CLASSES[label]


def test_mover_carries_most_of_the_motion_with_jitter_on() -> None:
    shares = []
    for i in range(16):
        s = scene(100 + i, i % len(synth.CLASSES))  # default: one jittering distractor
        assert len(s.jitterers) == 1
        change = np.abs(np.diff(synth.render_scene(s).astype(int), axis=0)).sum(-1)
        masks = synth.mover_masks(s)
        shares.append(change[masks[1:] | masks[:-1]].sum() / change.sum())
    assert np.mean(shares) > 0.5


def test_static_control_freezes_one_frame_of_the_motion_twin() -> None:
    moving, frozen = scene(3, 0), scene(3, 0, static=True)
    still = synth.render_scene(frozen)
    assert (still == still[:1]).all()  # no pixel changes between frames
    t = frozen.frozen_frame
    assert t is not None
    np.testing.assert_array_equal(still[0], synth.render_scene(moving)[t])


def centroid_of_changes(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` -> ``(T-1, 2)`` x, y centroid of the pixels that change."""
    change = np.abs(np.diff(frames.astype(int), axis=0)).sum(-1).astype(float)
    y, x = np.mgrid[0 : frames.shape[1], 0 : frames.shape[2]]
    total = change.sum((1, 2))
    return np.stack([(change * x).sum((1, 2)) / total, (change * y).sum((1, 2)) / total], 1)


def motion_checks(frames: np.ndarray, masks: np.ndarray) -> dict[str, bool]:
    """For each class name, whether the clip ``(T, H, W, 3)`` with mover masks ``(T, H, W)``
    moves like that class, judged from pixels only."""
    path = centroid_of_changes(frames)  # (T-1, 2)
    dx, dy = path[-1] - path[0]
    area = masks.sum((1, 2))  # (T,)
    # Signed area of the closed changed-pixel path: > 0 is clockwise on screen (y down).
    nxt = np.roll(path, -1, axis=0)
    turn = np.sum(path[:, 0] * nxt[:, 1] - nxt[:, 0] * path[:, 1])
    diagonal = abs(dx) > 5 and abs(dy) > 5 and 0.5 < abs(dx / dy) < 2

    def diagonal_to(sx: int, sy: int) -> bool:
        return bool(diagonal and np.sign(dx) == sx and np.sign(dy) == sy)

    return {
        "right": dx > 5 and abs(dy) < 0.5 * dx,
        "left": dx < -5 and abs(dy) < -0.5 * dx,
        "up": dy < -5 and abs(dx) < -0.5 * dy,
        "down": dy > 5 and abs(dx) < 0.5 * dy,
        "up-right": diagonal_to(1, -1),
        "down-left": diagonal_to(-1, 1),
        "up-left": diagonal_to(-1, -1),
        "down-right": diagonal_to(1, 1),
        "clockwise": turn > 0,
        "counterclockwise": turn < 0,
        "grow": area[-1] > 2 * area[0],
        "shrink": area[0] > 2 * area[-1],
    }


@pytest.mark.parametrize("name", synth.CLASSES)
def test_trajectory_matches_the_label(name: str) -> None:
    label = synth.CLASSES.index(name)
    for seed in range(4):
        s = scene(seed, label, moving_distractors=0)
        checks = motion_checks(synth.render_scene(s), synth.mover_masks(s))
        assert checks[name], (name, seed)


@pytest.mark.parametrize("axis", FLIP_AXES)
def test_flip_label_maps_name_the_motion_of_the_flipped_clip(axis: str) -> None:
    label_map = synth.FLIP_LABEL_MAPS[axis]
    assert check_label_map(label_map) == label_map
    for label, name in enumerate(synth.CLASSES):
        for seed in range(2):
            s = scene(seed, label, moving_distractors=0)
            frames = np.stack(flip_frames(list(synth.render_scene(s)), axis))
            masks = np.stack(flip_frames(list(synth.mover_masks(s)), axis))
            checks = motion_checks(frames, masks)
            flipped = synth.CLASSES[label_map[label]]
            assert checks[flipped], (axis, name, flipped, seed)
            if flipped != name:
                assert not checks[name], (axis, name, seed)


def test_every_preset_is_closed_under_the_flips() -> None:
    for preset in synth.PRESETS.values():
        for label_map in synth.FLIP_LABEL_MAPS.values():
            assert all(label_map[c] < preset.num_classes for c in range(preset.num_classes))


# ---------------------------------------------------------------- files on disk


def test_annotation_lists_are_mmaction_format_and_every_video_decodes(tmp_path: Path) -> None:
    root = build_tiny(tmp_path / "ms")
    params = synth.resolve_params(0, "tiny")
    classes = (root / "classes.txt").read_text().splitlines()
    assert classes == list(synth.CLASSES[: params.num_classes])
    for split, count in params.counts().items():
        lines = (root / f"{split}_list_videos.txt").read_text().splitlines()
        assert len(lines) == count
        labels = []
        for line in lines:
            relative, label = line.split(" ")
            assert not Path(relative).is_absolute() and relative.endswith(".mp4")
            labels.append(int(label))
            video = synth.read_video(root / relative)
            assert video.shape == (params.frames, params.height, params.width, 3)
        assert np.bincount(labels).tolist() == [count // len(classes)] * len(classes)


def test_static_dataset_videos_do_not_move(tmp_path: Path) -> None:
    root = build_tiny(synth.static_root(tmp_path / "ms"), static=True)
    assert root.name == "ms-static"
    relative = (root / "test_list_videos.txt").read_text().split()[0]
    video = synth.read_video(root / relative).astype(int)
    change = np.abs(video - video[:1])  # identical inputs: only H.264 rounding remains
    assert change.mean() < 0.5 and change.max() <= 8


def test_write_video_is_h264_yuv420p(tmp_path: Path) -> None:
    import av

    frames = synth.render_clip(0, 0, frames=4, height=32, width=48)
    synth.write_video(tmp_path / "clip.mp4", frames, fps=8)
    with av.open(str(tmp_path / "clip.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert (stream.width, stream.height, stream.frames) == (48, 32, 4)


# ---------------------------------------------------------------- ensure_dataset


def test_ensure_dataset_is_idempotent(tmp_path: Path) -> None:
    root = build_tiny(tmp_path / "ms")
    stamp = (root / "meta.json").stat().st_mtime_ns
    assert build_tiny(tmp_path / "ms") == root
    assert (root / "meta.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ms.lock", "ms"]  # no leftovers


def test_ensure_dataset_refuses_a_mismatching_folder(tmp_path: Path) -> None:
    root = build_tiny(tmp_path / "ms")
    with pytest.raises(ValueError, match=rf"{root}.*seed: folder has 0, asked 5"):
        synth.ensure_dataset(root, seed=5, size="tiny")
    with pytest.raises(ValueError, match=rf"{root}.*static"):
        synth.ensure_dataset(root, size="tiny", static=True)


def test_force_rebuilds_only_a_motion_synth_folder(tmp_path: Path) -> None:
    root = build_tiny(tmp_path / "ms")
    synth.ensure_dataset(root, seed=5, size="tiny", force=True)
    assert synth.read_meta(root)["params"]["seed"] == 5
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=rf"{foreign} exists but is not a motion-synth"):
        synth.ensure_dataset(foreign, size="tiny", force=True)
    assert (foreign / "notes.txt").exists()


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown size preset 'huge'"):
        synth.resolve_params(size="huge")
    with pytest.raises(ValueError, match="width must be even"):
        synth.resolve_params(size="tiny", width=33)


def _ensure_counting_builds(root: str, log: str, barrier: object) -> None:
    """Child process: count calls of build_dataset, start together, ensure."""
    original = synth.build_dataset

    def counted(out: Path, params: synth.SynthParams, progress=None) -> dict[str, int]:  # noqa: ANN001
        with open(log, "a") as handle:
            handle.write(f"{out}\n")
        return original(out, params, progress)

    synth.build_dataset = counted  # this process only
    barrier.wait()  # type: ignore[attr-defined]
    synth.ensure_dataset(root, seed=0, size="tiny")
    assert (Path(root) / "meta.json").is_file()  # complete as soon as ensure returns


def test_concurrent_calls_build_one_complete_dataset(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    barrier, log = ctx.Barrier(3), tmp_path / "builds.log"
    args = (str(tmp_path / "ms"), str(log), barrier)
    workers = [ctx.Process(target=_ensure_counting_builds, args=args) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert len(log.read_text().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ms.lock", "builds.log", "ms"]
    synth.check_meta(tmp_path / "ms", synth.resolve_params(0, "tiny"))


# ---------------------------------------------------------------- MMAction2 and the CLI


def test_registered_dataset_builds_the_data_when_missing(tmp_path: Path) -> None:
    from mmaction.registry import DATASETS
    from mmengine.registry import init_default_scope

    import mats_lab.mm.datasets  # noqa: F401  (registers MotionSynthDataset)

    init_default_scope("mmaction")
    root = tmp_path / "ms"
    pipeline = [
        dict(type="PyAVInit"),
        dict(type="SampleFrames", clip_len=4, frame_interval=2, num_clips=1),
        dict(type="PyAVDecode"),
        dict(type="FormatShape", input_format="NCTHW"),
        dict(type="PackActionInputs"),
    ]
    cfg = dict(
        type="MotionSynthDataset",
        synth_root=str(root),
        synth_size="tiny",
        ann_file=f"{root}/val_list_videos.txt",
        data_prefix=dict(video=str(root)),
        pipeline=pipeline,
        test_mode=True,
    )
    dataset = DATASETS.build(cfg)
    assert (root / "meta.json").is_file()
    assert len(dataset) == synth.resolve_params(0, "tiny").counts()["val"]
    assert dataset.metainfo["classes"] == ("right", "left", "up", "down")
    item = dataset[1]
    assert tuple(item["inputs"].shape) == (1, 3, 4, 32, 32)
    assert int(item["data_samples"].gt_label) == 1
    train = {**cfg, "ann_file": f"{root}/train_list_videos.txt", "test_mode": False}
    assert len(DATASETS.build(train)) == 8
    first = DATASETS.build({**train, "indices": 4})  # label-scarce: one clip a class
    assert [int(first[i]["data_samples"].gt_label) for i in range(len(first))] == [0, 1, 2, 3]
    with pytest.raises(TypeError, match="synth_sed"):
        DATASETS.build({**cfg, "synth_sed": 1})  # a typo'd key is an error, not ignored
    with pytest.raises(ValueError, match=str(root)):
        DATASETS.build({**cfg, "synth_seed": 1})


def test_cli_synth_builds_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "ms"
    result = CliRunner().invoke(data_cli.app, ["synth", "--out", str(out), "--size", "tiny"])
    assert result.exit_code == 0, result.output
    assert f"built: {out}" in result.output and "train 8, val 4, test 4" in result.output
    again = CliRunner().invoke(data_cli.app, ["synth", "--out", str(out), "--size", "tiny"])
    assert again.exit_code == 0 and "already there" in again.output


def test_cli_synth_errors_exit_non_zero_with_a_message(tmp_path: Path) -> None:
    bad = CliRunner().invoke(data_cli.app, ["synth", "--out", str(tmp_path), "--size", "huge"])
    assert bad.exit_code == 2 and "unknown size preset 'huge'" in bad.output
    out = tmp_path / "ms"
    build_tiny(out)
    clash = CliRunner().invoke(
        data_cli.app, ["synth", "--out", str(out), "--size", "tiny", "--seed", "3"]
    )
    assert clash.exit_code == 2 and str(out) in clash.output and "--force" in clash.output


def test_a_build_reports_its_progress_clip_by_clip(tmp_path):
    calls = []
    synth.ensure_dataset(tmp_path / "d", seed=0, size="tiny", progress=lambda *a: calls.append(a))
    total = sum(synth.resolve_params(0, "tiny", False).counts().values())
    assert calls == [(i, total) for i in range(1, total + 1)]
    calls.clear()
    synth.ensure_dataset(tmp_path / "d", seed=0, size="tiny", progress=lambda *a: calls.append(a))
    assert calls == [], "an existing dataset is not rebuilt"
