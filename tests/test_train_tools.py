"""The tiny configs with MMAction2's unchanged tools/train.py: pre-train, fine-tune from the
pre-training checkpoint, and resume a killed run under torch's weights_only loading."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mats_lab.lab.mmtools import train_command

REPO = Path(__file__).resolve().parents[1]
PRETRAIN = REPO / "mm_configs" / "mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"
FINETUNE = REPO / "mm_configs" / "mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"

pytestmark = pytest.mark.slow


def tiny_data(root: Path, loaders=("train",)) -> dict:
    """Overrides pointing a tiny config at the 'tiny' preset in ``root``, in-process loading."""
    options = {}
    for split in loaders:
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


def run(cmd, log: Path, timeout=600):
    with log.open("w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, cwd=REPO)
    return proc.returncode, log.read_text()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pretrain")
    options = {**tiny_data(tmp / "data"), "train_cfg.max_epochs": 1}
    code, text = run(train_command(PRETRAIN, tmp / "work", cfg_options=options), tmp / "log")
    assert code == 0, text[-3000:]
    return tmp


def test_pretraining_runs_and_saves_a_checkpoint(pretrained):
    assert (pretrained / "work" / "epoch_1.pth").is_file()
    assert "loss:" in (pretrained / "log").read_text()


def test_finetuning_loads_the_pretraining_checkpoint_and_trains(pretrained, tmp_path):
    options = {
        **tiny_data(pretrained / "data", ("train", "val")),
        "train_cfg.max_epochs": 1,
        "train_cfg.val_interval": 1,
        "load_from": str(pretrained / "work" / "epoch_1.pth"),
    }
    code, text = run(
        train_command(FINETUNE, tmp_path / "work", cfg_options=options), tmp_path / "log"
    )
    assert code == 0, text[-3000:]
    assert "Load checkpoint from" in text
    # the encoder loaded: only the fine-tuning head and pooling norm were missing
    missing = text.split("missing keys in source state_dict: ")[1].splitlines()[0].split(", ")
    assert all(k.startswith(("cls_head.", "backbone.fc_norm.")) for k in missing), missing
    unexpected = text.split("unexpected key in source state_dict: ")[1].splitlines()[0]
    assert all(k.startswith(("decoder.", "backbone.norm.")) for k in unexpected.split(", "))
    assert "acc/top1" in text
    assert (tmp_path / "work" / "epoch_1.pth").is_file()


def test_killed_run_resumes_from_its_last_checkpoint(pretrained, tmp_path):
    options = {
        **tiny_data(pretrained / "data"),
        # killed after epoch 1; the five after it keep the run going long enough that a
        # loaded machine's slow poll still kills it mid-way
        "train_cfg.max_epochs": 6,
        "train_cfg.val_interval": 100,
    }
    work = tmp_path / "work"
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(
        train_command(FINETUNE, work, cfg_options=options),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    # MMEngine writes `last_checkpoint` once a checkpoint is complete: kill after that.
    while not (work / "last_checkpoint").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (work / "epoch_6.pth").exists(), "the run finished before it could be killed"
    killed_at = int(Path((work / "last_checkpoint").read_text().strip()).stem.split("_")[1])
    code, text = run(
        train_command(FINETUNE, work, resume=True, cfg_options=options), tmp_path / "resume.log"
    )
    assert code == 0, text[-3000:]
    assert "Unsupported global" not in text
    assert f"resumed epoch: {killed_at}," in text
    assert (work / "epoch_6.pth").is_file()


def test_mats_lab_train_on_two_ranks(tmp_path):
    """``mats-lab train CONFIG --gpus 2``: two gloo ranks on CPU, identical weights, and a
    second call without --resume refuses to overwrite the run."""
    import json
    import sys

    options = {**tiny_data(tmp_path / "data"), "train_cfg.max_epochs": 1}
    work = tmp_path / "work"
    cmd = [sys.executable, "-m", "mats_lab.cli.main", "train", str(PRETRAIN), "--gpus", "2"]
    cmd += ["--work-dir", str(work)]
    for key, value in options.items():
        cmd += ["--cfg-options", f"{key}={value}"]
    code, text = run(cmd, tmp_path / "log")
    assert code == 0, text[-3000:]
    assert "--nproc-per-node 2" in text and "Distributed training: True" in text
    ranks = json.loads((work / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and len(set(ranks["digests"])) == 1
    assert (work / "epoch_1.pth").is_file()
    code, text = run(cmd, tmp_path / "again.log")
    assert code != 0 and "--resume" in text
