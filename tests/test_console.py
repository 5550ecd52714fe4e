"""The sweep's status lines: one line when a stage starts, then a line only when it has moved
on; never a line of placeholders (``epoch 0/? iter 0/?``), never the same line twice."""

from __future__ import annotations

import io

from mats_lab.lab.console import Console, StatusRow
from mats_lab.lab.progress import ProgressReader
from mats_lab.protocol.records import TrainLine, ValLine, append_progress


def test_status_lines_start_once_and_repeat_nothing(tmp_path):
    out = io.StringIO()
    console = Console(out, every=0.0)
    path = tmp_path / "progress.jsonl"
    reader = ProgressReader(path)
    row = StatusRow("cpu0", 3, "finetune", reader)

    def show() -> list[str]:
        before = out.getvalue()
        reader.update()
        console.status([row], "acc/top1", force=True)
        return out.getvalue()[len(before) :].splitlines()

    assert show() == ["[cpu0] trial 3 finetune started"]
    assert show() == [], "no progress yet: no placeholder line"
    append_progress(path, TrainLine(epoch=1, iter=5, max_iters=50, max_epochs=10, loss=2.0))
    lines = show()
    assert len(lines) == 1 and "epoch 1/10 iter 5/50 loss 2" in lines[0]
    assert show() == [], "nothing new: no repeated line"
    append_progress(path, ValLine(epoch=1, metrics={"acc/top1": 0.25}))
    assert "acc/top1 0.25" in show()[0]
    assert "explained" not in out.getvalue()  # a fine-tuning logs none


def test_a_pre_training_line_says_how_much_it_explains(tmp_path):
    out = io.StringIO()
    console = Console(out, every=0.0)
    path = tmp_path / "progress.jsonl"
    reader = ProgressReader(path)
    line = TrainLine(epoch=2, iter=10, loss=0.56, scalars={"explained": 0.00012, "zero_mse": 0.5})
    append_progress(path, line)
    reader.update()
    console.status([StatusRow("cpu1", 0, "pretrain", reader)], "acc/top1", force=True)
    assert "loss 0.56 explained 0.00012 acc/top1 -" in out.getvalue()


def test_the_study_eta_comes_from_finished_stages():
    from mats_lab.lab.console import study_eta

    assert study_eta({}, [("finetune", 1)], [], 2) is None, "nothing finished: no guess"
    seconds = {"pretrain": [100.0, 140.0], "finetune": [60.0]}  # means 120 and 60
    to_run = [("finetune", 1), ("finetune", 1), ("pretrain", 2), ("test", 1)]
    running = [("finetune", 1, 20.0), ("pretrain", 1, 150.0)]  # 40 s left, overdue: 0
    # device-seconds: 60 + 60 + 2 * 120 + 90 (a name never finished: the mean of means) + 40
    assert study_eta(seconds, to_run, running, 2) == (60 + 60 + 240 + 90 + 40) / 2


def test_the_overall_line_is_printed_when_it_changes(tmp_path):
    out = io.StringIO()
    console = Console(out, every=0.0)
    lines = iter(["study: 3 stages to go, eta 4 min", "study: 3 stages to go, eta 4 min", ""])
    for _ in range(3):
        console.status([], "acc/top1", overall=lambda: next(lines))
    assert out.getvalue().splitlines() == ["study: 3 stages to go, eta 4 min"]
