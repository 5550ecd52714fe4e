"""What a sweep prints: messages, a status line per running stage, the closing summary table.

The view reads what it shows (progress readers, the study's stored trials) and changes nothing.

Only Optuna's trial records and the standard library are used here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from optuna.trial import FrozenTrial, TrialState

from mats_lab.lab.progress import ProgressReader

__all__ = ["Console", "StatusRow", "fmt", "study_eta"]


@dataclass(frozen=True)
class StatusRow:
    """One running stage as the status lines show it."""

    devices: str  # ``gpu2+gpu5``
    trial: int
    stage: str
    reader: ProgressReader


class Console:
    """Prints to ``out``; progress lines at most every ``every`` seconds."""

    def __init__(self, out: TextIO, every: float) -> None:
        self.out = out
        self.every = every
        self._last = 0.0
        self._shown: dict[tuple[int, str], tuple[int, int, float | None]] = {}
        self._overall = ""

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def status(
        self,
        rows: Iterable[StatusRow],
        metric: str,
        force: bool = False,
        overall: Callable[[], str] | None = None,
    ) -> None:
        """A line per running stage: epoch, iteration, loss, ``metric`` and ETA; once when the
        stage starts, then only when it has moved on (no placeholder or repeated lines)."""
        now = time.time()
        if not force and now - self._last < self.every:
            return
        self._last = now
        for row in rows:
            r = row.reader
            key = (row.trial, row.stage)
            if key not in self._shown:
                self._shown[key] = (-1, -1, None)
                self.say(f"[{row.devices}] trial {row.trial} {row.stage} started")
            if not r.iter:
                continue  # nothing trained yet: no line of placeholders
            latest = (r.epoch, r.iter, r.latest_val(metric))
            if self._shown[key] == latest:
                continue  # no news since the last line
            self._shown[key] = latest
            eta = r.eta()
            # a pre-training has no validation metric; its fit says whether it learns
            fit = f"explained {fmt(r.scalars['explained'])} " if "explained" in r.scalars else ""
            self.say(
                f"[{row.devices}] trial {row.trial} {row.stage} "
                f"epoch {r.epoch}/{r.max_epochs or '?'} iter {r.iter}/{r.max_iters or '?'} "
                f"loss {fmt(r.loss)} {fit}{metric} {fmt(r.latest_val(metric))} "
                f"eta {f'{eta:.0f}s' if eta is not None else '?'}"
            )
        line = overall() if overall is not None else ""
        if line and line != self._overall:
            self._overall = line
            self.say(line)

    def summary(
        self,
        name: str,
        trials: list[FrozenTrial],
        variables: list[str],
        objectives: list[str],
        stop_reason: str,
        tracking_online: bool,
    ) -> None:
        """Trial counts by state, then a table: trial, state, variables, seed, objectives."""
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        self.say("")
        self.say(f"study {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        header = ["trial", "state", *variables, "seed", *objectives, "wall_s"]
        lines = [header]
        for t in trials:
            if t.state == TrialState.WAITING:
                continue
            metrics = t.user_attrs.get("metrics", {})
            lines.append(
                [
                    str(t.number),
                    t.state.name,
                    *[str(t.params.get(n, "")) for n in variables],
                    str(t.user_attrs.get("seed", "")),
                    *[fmt(metrics.get(n)) for n in objectives],
                    fmt(metrics.get("wall_time_s")),
                ]
            )
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        for row in lines:
            self.say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if stop_reason:
            self.say(f"stopped early: {stop_reason}")
        if not tracking_online:
            self.say("MLflow was unavailable: run `mats-lab sync` to push the trials")


def study_eta(
    stage_seconds: dict[str, list[float]],
    to_run: list[tuple[str, int]],
    running: list[tuple[str, int, float]],
    devices: int,
) -> float | None:
    """Seconds until the study's known stages are done, from the stages finished so far.

    Args:
        stage_seconds: stage name -> wall seconds of each stage of that name finished here.
        to_run: ``(stage name, devices)`` of every stage still to run (each once).
        running: ``(stage name, devices, seconds so far)`` of the stages running now.
        devices: devices of the pool.

    A stage's length is the mean of its name's finished ones (of all, for a name none has
    finished yet); device-seconds left over the pool's devices. None before any stage ended.
    """
    means = {name: sum(v) / len(v) for name, v in stage_seconds.items() if v}
    if not means or devices < 1:
        return None
    overall = sum(means.values()) / len(means)
    work = sum(means.get(name, overall) * n for name, n in to_run)
    work += sum(max(0.0, means.get(name, overall) - done) * n for name, n, done in running)
    return work / devices


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
