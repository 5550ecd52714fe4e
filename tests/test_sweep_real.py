"""A real sweep (MMEngine stage runner, tiny configs, the tiny data preset): a pre-train ->
fine-tune -> test trial completes with cost and metrics; the sweep SIGKILLed in the middle of a
fine-tuning resumes it from its checkpoint, keeps the finished pre-training, and trains
exactly as an uninterrupted sweep; the dumped config replays with tools/train.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from mats_lab.lab.study import open_storage

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def data_overrides(root: Path, splits: tuple[str, ...]) -> dict:
    options: dict = {}
    for split in splits:
        key = f"{split}_dataloader"
        options.update(
            {
                f"{key}.dataset.synth_root": str(root),
                f"{key}.dataset.synth_size": "tiny",
                f"{key}.dataset.ann_file": str(root / f"{split}_list_videos.txt"),
                f"{key}.dataset.data_prefix.video": str(root),
                f"{key}.batch_size": 4,
                f"{key}.num_workers": 0,
                f"{key}.persistent_workers": False,
            }
        )
    return options


def write_study(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    study = {
        "name": "real",
        "stages": [
            {
                "name": "pretrain",
                "config": str(REPO / "mm_configs/mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"),
                "knobs": {"epochs": 1},
                "overrides": data_overrides(data, ("train",)),
            },
            {
                "name": "finetune",
                "config": str(REPO / "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"),
                "load_from": "pretrain",
                "test": True,
                "knobs": {"epochs": 4},
                "overrides": {
                    **data_overrides(data, ("train", "val", "test")),
                    "train_cfg.val_interval": 1,
                    "train_dataloader.dataset.pipeline.1.clip_len": 8,
                },
            },
        ],
        "space": {"keep_ratio": {"grid": [0.5], "stages": ["finetune"]}},
        "resources": {"devices": 1},
        "output": str(tmp_path / "study"),
    }
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def sweep(path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mats_lab.cli.main", "sweep", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )


def test_dumped_config_replays_with_tools_train(tmp_path):
    # The study's pre-training stage as the sweep hands it to the stage runner, resolved and
    # dumped (``resolve_only``: the dump is written before training, by the same code), then
    # trained from the dump alone by MMAction2's plain tools/train.py.
    from mats_lab.lab.mmtools import train_command
    from mats_lab.protocol.records import StageSpec, write_stage_spec

    stage = yaml.safe_load(write_study(tmp_path).read_text())["stages"][0]
    work_dir = tmp_path / "stage"
    spec = StageSpec(
        config=stage["config"],
        overrides=stage["overrides"],
        knobs=stage["knobs"],
        strict=list(stage["knobs"]),
        work_dir=str(work_dir),
        resolve_only=True,
    )
    write_stage_spec(tmp_path / "stage.json", spec)
    resolved = subprocess.run(
        [sys.executable, "-m", "mats_lab.trial.stage_run", "--spec", str(tmp_path / "stage.json")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert resolved.returncode == 0, resolved.stdout[-3000:] + resolved.stderr[-3000:]
    dumped = work_dir / "config.py"
    assert not (work_dir / "result.json").exists()  # resolved and dumped, nothing trained
    replay = subprocess.run(
        train_command(dumped, tmp_path / "replay"),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert replay.returncode == 0, replay.stdout[-3000:] + replay.stderr[-3000:]
    assert (tmp_path / "replay" / "epoch_1.pth").is_file()
    assert (tmp_path / "replay" / "progress.jsonl").is_file()


# -- exact resume (issue 17) ---------------------------------------------------------------

FINETUNE = REPO / "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"


def write_exact_study(path: Path, data: Path, output: Path) -> Path:
    """A one-epoch pre-training, then a fine-tuning from it, 3 epochs of 8 iterations, with
    every random stream in play: persistent workers, random flips and frame offsets, drop
    path, token selection."""
    overrides = {
        **data_overrides(data, ("train", "val", "test")),
        "train_dataloader.batch_size": 1,
        "train_dataloader.num_workers": 2,
        "train_dataloader.persistent_workers": True,
        "train_dataloader.dataset.pipeline.1.clip_len": 8,
        "train_cfg.val_interval": 1,
        "model.backbone.drop_path_rate": 0.1,
        # every iteration's own loss in vis_data/scalars.json (not a running mean)
        "default_hooks.logger.interval": 1,
        "log_processor.window_size": 1,
    }
    study = {
        "name": "exact",
        "stages": [
            {
                "name": "pretrain",
                "config": str(REPO / "mm_configs/mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"),
                "knobs": {"epochs": 1},
                "overrides": data_overrides(data, ("train",)),
            },
            {
                "name": "finetune",
                "config": str(FINETUNE),
                "load_from": "pretrain",
                "test": True,
                "knobs": {"epochs": 3},
                "overrides": overrides,
            },
        ],
        "space": {"keep_ratio": {"grid": [0.5], "stages": ["finetune"]}},
        "resources": {"devices": 1},
        "output": str(output),
    }
    path.write_text(yaml.safe_dump(study))
    return path


def stage_dir(output: Path) -> Path:
    dirs = list((output / "stages").glob("finetune-*"))
    assert len(dirs) == 1, dirs
    return dirs[0]


def train_losses(work_dir: Path) -> tuple[dict[int, float], dict[int, float]]:
    """Loss by iteration from the progress lines and from every run's ``scalars.json``
    (oldest run first; a later run's line for an iteration replaces an earlier one's)."""
    from mats_lab.protocol.records import TrainLine, read_progress_lines

    progress = {
        line.iter: line.loss
        for line in read_progress_lines(work_dir / "progress.jsonl")
        if isinstance(line, TrainLine)
    }
    scalars: dict[int, float] = {}
    for path in sorted(work_dir.glob("*/vis_data/scalars.json")):  # timestamped run folders
        for text in path.read_text().splitlines():
            record = json.loads(text)
            if "loss" in record:
                scalars[record["step"]] = record["loss"]
    return progress, scalars


def step_scalars(work_dir: Path) -> dict[int, dict]:
    """The train step's other scalars (``TrainLine.scalars``) by iteration."""
    from mats_lab.protocol.records import TrainLine, read_progress_lines

    lines = read_progress_lines(work_dir / "progress.jsonl")
    return {line.iter: line.scalars for line in lines if isinstance(line, TrainLine)}


def final_metrics(work_dir: Path) -> tuple[dict, dict]:
    from mats_lab.protocol.records import TestLine, ValLine, read_progress_lines

    lines = read_progress_lines(work_dir / "progress.jsonl")
    val = [line for line in lines if isinstance(line, ValLine)]
    test = [line for line in lines if isinstance(line, TestLine)]
    return val[-1].model_dump(include={"epoch", "metrics"}), test[-1].metrics


def test_killed_and_resumed_sweep_trains_exactly_as_an_uninterrupted_one(tmp_path):
    data = tmp_path / "data"
    whole_out, killed_out = tmp_path / "whole", tmp_path / "killed"
    whole = sweep(write_exact_study(tmp_path / "whole.yaml", data, whole_out))
    out, _ = whole.communicate(timeout=900)
    assert whole.returncode == 0, out[-3000:]

    path = write_exact_study(tmp_path / "killed.yaml", data, killed_out)
    proc = sweep(path)
    deadline = time.time() + 600  # a bound on the polling, not on the training
    # last_checkpoint is written after the checkpoint it names (epoch_1.pth)
    while not any((killed_out / "stages").glob("finetune-*/last_checkpoint")):
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline, "fine-tuning never reached its first checkpoint"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # mid-stage: in epoch 2 or the validation of epoch 1
    proc.wait()
    finished = list((killed_out / "stages").glob("finetune-*/result.json"))
    assert not finished, "the fine-tuning ended before the kill"
    time.sleep(1.0)
    proc = sweep(path)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]

    reference, resumed = stage_dir(whole_out), stage_dir(killed_out)
    log = (resumed / "stage.log").read_text()
    assert "resuming from checkpoint" in log and "resumed epoch: 1" in log
    progress_ref, scalars_ref = train_losses(reference)
    progress, scalars = train_losses(resumed)
    assert sorted(scalars_ref) == list(range(1, 25))  # 3 epochs x 8 iterations, all logged
    assert scalars == scalars_ref  # every iteration's loss, bit for bit
    assert progress == progress_ref
    assert sorted(progress_ref) == [5, 8, 10, 15, 16, 20, 24]  # every 5th iteration, epoch ends
    assert step_scalars(resumed) == step_scalars(reference)  # train accuracy too
    assert final_metrics(resumed) == final_metrics(reference)
    ours = json.loads((resumed / "result.json").read_text())
    theirs = json.loads((reference / "result.json").read_text())
    assert ours["resumed_from"].endswith(".pth") and not theirs.get("resumed_from")
    assert ours["val"] == theirs["val"] and "acc/top1" in ours["val"]
    assert ours["test"] == theirs["test"] and "acc/top1" in ours["test"]
    recorded = []
    for output in (whole_out, killed_out):
        storage = open_storage(f"journal://{output / 'optuna.journal'}")
        trials = optuna.load_study(study_name="exact", storage=storage).get_trials()
        done = [t for t in trials if t.state.name == "COMPLETE"]
        assert len(done) == 1, [t.state.name for t in trials]
        recorded.append(
            {k: done[0].user_attrs["metrics"][k] for k in ("val/acc/top1", "test/acc/top1")}
        )
    assert recorded[0] == recorded[1]  # the study's record of the final accuracy, too
    # the killed attempt is failed, the rerun completes the trial; the pre-training it had
    # finished is kept, and the trial's record carries both stages' costs
    storage = open_storage(f"journal://{killed_out / 'optuna.journal'}")
    trials = optuna.load_study(study_name="exact", storage=storage).get_trials()
    assert sorted(t.state.name for t in trials) == ["COMPLETE", "FAIL"]
    done = next(t for t in trials if t.state.name == "COMPLETE")
    assert [s["reused"] for s in done.user_attrs["stages"]] == [True, False]
    # the train steps' other scalars, per epoch, beside the losses: how much of the
    # predict-zeros error the pre-training removes, how well the fine-tuning fits its clips
    history = done.user_attrs["history"]
    assert [epoch for epoch, _ in history["pretrain/train/explained"]] == [1]
    assert [epoch for epoch, _ in history["pretrain/train/zero_mse"]] == [1]
    assert [epoch for epoch, _ in history["finetune/train/top1_acc"]] == [1, 2, 3]
    assert all(0.0 <= value <= 1.0 for _, value in history["finetune/train/top1_acc"])
    assert not any("loss_cls" in name for name in history)  # parts of the loss stay out
    for key in (
        "train_gmacs",
        "test_gmacs",
        "params_m",
        "peak_memory_mb",
        "throughput",
        "pretrain/train_gmacs",
    ):
        assert key in done.user_attrs["metrics"], key
