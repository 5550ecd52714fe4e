"""The train step's other scalars (the pre-training's ``explained``, a recognizer's train
accuracy) travel from MMEngine's outputs through ``progress.jsonl`` to per-epoch means."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from mats_lab.lab.progress import read_progress
from mats_lab.protocol.records import TrainLine, append_progress, read_progress_lines


def runner(tmp_path, epoch: int, it: int) -> SimpleNamespace:
    return SimpleNamespace(
        work_dir=str(tmp_path),
        epoch=epoch,
        iter=it,
        max_iters=8,
        max_epochs=2,
        train_dataloader=[None] * 4,
    )


def test_hook_writes_every_scalar_but_the_loss_parts(mm, tmp_path):
    from mats_lab.mm.progress_hook import TrialProgressHook

    hook = TrialProgressHook(interval=2)
    outputs = {
        "loss": torch.tensor(0.5),
        "loss_cls": torch.tensor(0.5),  # a part of ``loss``: not repeated
        "top1_acc": torch.tensor(0.25),
        "explained": torch.tensor(float("nan")),  # not JSON: written as null
    }
    hook.after_train_iter(runner(tmp_path, 0, 1), 1, {"inputs": [1, 2]}, outputs)
    (line,) = read_progress_lines(tmp_path / "progress.jsonl")
    assert isinstance(line, TrainLine)
    assert line.loss == 0.5 and line.samples == 2
    assert line.scalars == {"top1_acc": 0.25, "explained": None}


def test_epoch_means_of_the_scalars_and_old_lines_without_them(tmp_path):
    path = tmp_path / "progress.jsonl"
    old = {"kind": "train", "epoch": 1, "iter": 1, "loss": 1.0}  # written before scalars
    path.write_text(json.dumps(old) + "\n")
    for epoch, it, loss, explained in ((1, 2, 0.8, 0.1), (2, 3, 0.6, 0.3), (2, 4, 0.4, None)):
        scalars = {"explained": explained, "zero_mse": 1.0}
        append_progress(path, TrainLine(epoch=epoch, iter=it, loss=loss, scalars=scalars))
    reader = read_progress(path)
    assert reader.epoch_losses() == pytest.approx({1: 0.9, 2: 0.5})
    scalars = reader.epoch_scalars()
    assert sorted(scalars) == ["explained", "zero_mse"]
    assert scalars["explained"] == pytest.approx({1: 0.1, 2: 0.3})  # None skipped
    assert scalars["zero_mse"] == pytest.approx({1: 1.0, 2: 1.0})
