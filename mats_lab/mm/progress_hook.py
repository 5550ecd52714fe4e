"""``TrialProgressHook``: one JSON line per event in ``<work_dir>/progress.jsonl``.

The sweep orchestrator follows a trial through this file alone (no sockets, no MLflow inside
the trial): training lines carry epoch, iteration, loss and the train step's other logged
scalars (``TrainLine.scalars``), validation lines the evaluator's
metrics per epoch, test lines the final metrics. It is listed in the dumped config's
``custom_hooks``, so a replay with plain ``tools/train.py`` writes the same file.

The lines are the progress records of :mod:`mats_lab.protocol.records` (``TrainLine``,
``ValLine``, ``TestLine``); in a distributed stage only rank 0 writes.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mats_lab.protocol.records import TestLine, TrainLine, ValLine, append_progress


def _plain(value: Any) -> Any:
    """A JSON-safe number (tensors and numpy scalars become floats)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@HOOKS.register_module()
class TrialProgressHook(Hook):
    """Append progress lines to ``out_file`` (default ``<work_dir>/progress.jsonl``).

    Args:
        interval: write a training line every ``interval`` iterations (and at each epoch end).
        out_file: path of the file; relative paths are under the runner's work dir.
    """

    priority = "VERY_LOW"

    def __init__(self, interval: int = 5, out_file: str = "progress.jsonl") -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.interval = interval
        self.out_file = out_file
        self._samples = 0
        self._path = ""

    def _write(self, runner: Any, line: TrainLine | ValLine | TestLine) -> None:
        if not is_main_process():  # one line per event: rank 0 speaks for the stage
            return
        if not self._path:
            self._path = os.path.join(runner.work_dir, self.out_file)
        line.time = time.time()
        append_progress(self._path, line)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        inputs = data_batch.get("inputs") if isinstance(data_batch, dict) else None
        self._samples += len(inputs) if inputs is not None else 0
        end_of_epoch = batch_idx + 1 == len(runner.train_dataloader)
        if (runner.iter + 1) % self.interval and not end_of_epoch:
            return
        outputs = outputs if isinstance(outputs, dict) else {}
        scalars = {k: _plain(v) for k, v in outputs.items() if "loss" not in k}
        self._write(
            runner,
            TrainLine(
                epoch=runner.epoch + 1,
                iter=runner.iter + 1,
                max_iters=runner.max_iters,
                max_epochs=runner.max_epochs,
                loss=_plain(outputs.get("loss")),
                scalars=scalars or None,
                samples=self._samples,
            ),
        )

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        clean = {k: _plain(v) for k, v in (metrics or {}).items()}
        self._write(runner, ValLine(epoch=runner.epoch, metrics=clean))

    def after_test_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        clean = {k: _plain(v) for k, v in (metrics or {}).items()}
        self._write(runner, TestLine(metrics=clean))
