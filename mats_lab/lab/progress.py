"""Following a running stage through its ``progress.jsonl`` (the progress records of
:mod:`mats_lab.protocol.records`).

The reader keeps its file offset and parses only new complete lines, so the orchestrator can
poll many stages cheaply. It yields the latest epoch/iteration/loss, the validation metrics per
epoch (for pruning and the MLflow history) and an ETA from the iteration rate.

Only the standard library and :mod:`mats_lab.protocol` are imported here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mats_lab.protocol.records import TestLine, TrainLine, ValLine, parse_progress_line

__all__ = ["ProgressReader", "epoch_means", "read_progress"]


@dataclass
class ProgressReader:
    path: Path
    offset: int = 0
    epoch: int = 0
    max_epochs: int = 0
    iter: int = 0
    max_iters: int = 0
    loss: float | None = None
    train: list[TrainLine] = field(default_factory=list)  # every train line
    val: dict[int, dict] = field(default_factory=dict)  # epoch -> metrics
    test: dict = field(default_factory=dict)
    _rate_start: tuple[float, int] | None = None  # (time, iter) of this run's first line
    _rate_last: tuple[float, int] | None = None

    def update(self) -> list[TrainLine | ValLine | TestLine]:
        """Parse the lines written since the last call; returns them."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        records = []
        for raw in chunk[:end].decode(errors="replace").splitlines():
            record = parse_progress_line(raw)
            if record is not None:
                records.append(record)
                self._take(record)
        return records

    def _take(self, record: TrainLine | ValLine | TestLine) -> None:
        if isinstance(record, TrainLine):
            self.train.append(record)
            it = record.iter
            now = record.time if record.time is not None else time.time()
            if self._rate_start is None or it < self._rate_start[1] or it <= self.iter:
                self._rate_start = (now, it)  # a new (resumed) run starts counting again
            self._rate_last = (now, it)
            self.epoch = record.epoch
            self.max_epochs = record.max_epochs or self.max_epochs
            self.iter = it
            self.max_iters = record.max_iters or self.max_iters
            self.loss = record.loss
        elif isinstance(record, ValLine):
            self.val[record.epoch] = dict(record.metrics)
        else:
            self.test = dict(record.metrics)

    def eta(self) -> float | None:
        """Seconds left at this run's iteration rate (None before two lines)."""
        if not self._rate_start or not self._rate_last or not self.max_iters:
            return None
        (t0, i0), (t1, i1) = self._rate_start, self._rate_last
        if i1 <= i0 or t1 <= t0:
            return None
        return (self.max_iters - i1) * (t1 - t0) / (i1 - i0)

    def latest_val(self, metric: str) -> float | None:
        for epoch in sorted(self.val, reverse=True):
            if metric in self.val[epoch]:
                return self.val[epoch][metric]
        return None

    @property
    def scalars(self) -> dict[str, float | None]:
        """The other train-step scalars of the latest train line (empty before one)."""
        return dict(self.train[-1].scalars or {}) if self.train else {}

    def epoch_losses(self) -> dict[int, float]:
        """Mean training loss per epoch (over the logged lines)."""
        return epoch_means((line.epoch, line.loss) for line in self.train)

    def epoch_scalars(self) -> dict[str, dict[int, float]]:
        """Mean of each other train-step scalar per epoch: ``{name: {epoch: mean}}``."""
        names = sorted({name for line in self.train for name in (line.scalars or {})})
        return {
            name: epoch_means((line.epoch, (line.scalars or {}).get(name)) for line in self.train)
            for name in names
        }


def epoch_means(points: Iterable[tuple[int, float | None]]) -> dict[int, float]:
    """``(epoch, value)`` pairs averaged per epoch, epochs in order (``None`` values skipped)."""
    sums: dict[int, list[float]] = {}
    for epoch, value in points:
        if value is not None:
            sums.setdefault(epoch, []).append(float(value))
    return {e: sum(v) / len(v) for e, v in sorted(sums.items())}


def read_progress(path: Path) -> ProgressReader:
    """Everything in a finished stage's progress file."""
    reader = ProgressReader(path)
    reader.update()
    return reader
