"""The sweep-level must-show of multi-rank stages, on CPU: a study whose two stages ask for 2
devices each runs them on 2 gloo ranks, completes, is logged once in MLflow; a SIGKILL of the
sweep in the middle of the pre-training stops both ranks, and the next sweep resumes on both
from the checkpoint and trains exactly as an uninterrupted sweep: every loss and both ranks'
final weights equal, then the fine-tuning from it validates the same. Every rank's random
states (torch's generator for drop path, the pre-training's own masking generator, seeded
per rank) go into rank 0's checkpoint and come back to their own rank."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

from mats_lab.lab.study import open_storage

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
PRETRAIN = REPO / "mm_configs/mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"
FINETUNE = REPO / "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
# the pre-training is killed after epoch 2; the ten epochs after it (about half a second each)
# keep it running long enough that a loaded machine's slow poll still lands the kill mid-stage
# (with four, under a full test run, a stage once finished first and there was nothing to resume)
EPOCHS = 12
FINETUNE_EPOCHS = 2


def data_overrides(root: Path) -> dict:
    options: dict = {}
    for split in ("train", "val"):
        key = f"{split}_dataloader"
        options |= {
            f"{key}.dataset.synth_root": str(root),
            f"{key}.dataset.synth_size": "tiny",
            f"{key}.dataset.ann_file": str(root / f"{split}_list_videos.txt"),
            f"{key}.dataset.data_prefix.video": str(root),
            f"{key}.batch_size": 4,
            f"{key}.num_workers": 0,
            f"{key}.persistent_workers": False,
        }
    return options


def write_study(tmp_path: Path, name: str) -> Path:
    """The study in ``tmp_path/name.yaml``, its folder ``tmp_path/name``; the data is shared."""
    data = data_overrides(tmp_path / "data")
    study = {
        "name": "ranks",
        "stages": [
            {
                "name": "pretrain",
                "config": str(PRETRAIN),
                "devices": 2,
                "knobs": {"epochs": EPOCHS},
                "overrides": {
                    **{k: v for k, v in data.items() if k.startswith("train_")},
                    "model.seed": 1,  # a masking generator per rank (seed + 1000003 * rank)
                    "model.backbone.drop_path_rate": 0.2,  # torch's generator, one per rank
                    "default_hooks.logger.interval": 1,
                    "log_processor.window_size": 1,  # every iteration's own loss
                },
            },
            {
                "name": "finetune",
                "config": str(FINETUNE),
                "devices": 2,
                "load_from": "pretrain",
                "knobs": {"epochs": FINETUNE_EPOCHS},
                "overrides": {**data, "train_cfg.val_interval": 1},
            },
        ],
        "space": {"keep_ratio": {"grid": [0.6], "stages": ["finetune"]}},
        "resources": {"devices": 2, "cpu_threads": 1},
        "output": str(tmp_path / name),
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def losses(stage: Path) -> dict[int, float | None]:
    """Rank 0's training loss by iteration, from the stage's progress lines."""
    from mats_lab.protocol.records import TrainLine, read_progress_lines

    lines = read_progress_lines(stage / "progress.jsonl")
    return {line.iter: line.loss for line in lines if isinstance(line, TrainLine)}


def sweep(path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mats_lab.cli.main", "sweep", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )


def rank_processes(stages: Path) -> list[int]:
    """Pids of stage runners (launchers or ranks) working in this study."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"mats_lab.trial.stage_run" in cmdline and str(stages).encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def test_sweep_stages_on_two_ranks_survive_a_kill_and_resume_exactly(tmp_path):
    whole = sweep(write_study(tmp_path, "whole"))
    out, _ = whole.communicate(timeout=900)
    assert whole.returncode == 0, out[-4000:]

    path = write_study(tmp_path, "study")
    proc = sweep(path)
    stages = tmp_path / "study" / "stages"
    deadline = time.time() + 600
    while not any(stages.glob("pretrain-*/epoch_2.pth")):
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        assert time.time() < deadline, "the pre-training never reached epoch 2"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while rank_processes(stages):  # the stage and its ranks die with the sweep
        assert time.time() < deadline, f"left running: {rank_processes(stages)}"
        time.sleep(0.2)
    assert not any(stages.glob("pretrain-*/result.json")), "the stage ended before the kill"

    proc = sweep(path)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-4000:]

    pt = next(stages.glob("pretrain-*"))
    log = (pt / "stage.log").read_text()
    assert "--nproc-per-node 2" in log
    assert "rank 0/2: resuming from checkpoint" in log
    assert "rank 1/2: resuming from checkpoint" in log
    result = json.loads((pt / "result.json").read_text())
    assert result["nprocs"] == 2 and result["resumed_from"].endswith(".pth")
    ranks = json.loads((pt / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and len(set(ranks["digests"])) == 1
    assert ranks["iter"] == EPOCHS  # one step per epoch: 8 clips, 4 per rank

    reference = next((tmp_path / "whole" / "stages").glob("pretrain-*"))
    assert losses(pt) == losses(reference) and len(losses(reference)) == EPOCHS
    assert ranks["digests"] == json.loads((reference / "ranks.json").read_text())["digests"]
    ft, ft_reference = (
        next((tmp_path / n / "stages").glob("finetune-*")) for n in ("study", "whole")
    )
    assert json.loads((ft / "ranks.json").read_text())["world_size"] == 2
    ours, theirs = (json.loads((f / "result.json").read_text()) for f in (ft, ft_reference))
    assert ours["val"] == theirs["val"] and "acc/top1" in ours["val"]

    storage = open_storage(f"journal://{tmp_path / 'study' / 'optuna.journal'}")
    trials = optuna.load_study(study_name="ranks", storage=storage).get_trials()
    assert sorted(t.state.name for t in trials) == ["COMPLETE", "FAIL"]

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'study' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["ranks"])
    children = runs[runs["tags.mats_lab.trial"].notna()]
    finished = children[children["status"] == "FINISHED"]
    assert len(finished) == 1  # one run for the trial, not one per rank
    history = mlflow.tracking.MlflowClient().get_metric_history(
        finished.run_id.iloc[0], "val/acc/top1"
    )
    steps = [m.step for m in history]
    assert len(steps) == len(set(steps))  # each epoch's validation logged once
    assert steps[-1] == FINETUNE_EPOCHS
