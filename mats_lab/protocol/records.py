"""The records that cross the subprocess boundary, each with a format version, and the one
reader and writer of each.

- :class:`StageSpec` (``stage.json``): what the sweep asks a stage process to train;
- :class:`StageResult` (``result.json``): what the stage process leaves when it is done;
- :class:`TrainLine`, :class:`ValLine`, :class:`TestLine` (``progress.jsonl``): one line per
  event while it trains, which the sweep follows to report, prune and show progress.

A record of another format version is refused with a message naming the file, so a sweep and
a trial from different versions of mats-lab never misread each other. Unknown fields are
refused too (a typo in a hand-written spec does nothing otherwise).

Only pydantic and the standard library are imported here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

__all__ = [
    "FORMAT_VERSION",
    "ProgressLine",
    "RecordError",
    "StageResult",
    "StageSpec",
    "TestLine",
    "TrainLine",
    "ValLine",
    "append_progress",
    "parse_progress_line",
    "read_progress_lines",
    "read_result",
    "read_stage_spec",
    "trial_machine",
    "write_result",
    "write_stage_spec",
]

#: Bumped whenever a record changes in a way an older reader would misread.
FORMAT_VERSION = 1


class RecordError(ValueError):
    """A record file that cannot be read as its record (the message names the file)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)


class StageSpec(_Record):
    """One stage to train: the sweep writes it, the stage process reads it."""

    #: The MMEngine config file (absolute).
    config: str
    #: Dotted-key overrides, applied before the knobs (``{"train_cfg.val_interval": 5}``).
    overrides: dict[str, Any] = {}
    #: Knob values (see :mod:`mats_lab.protocol.knobs`).
    knobs: dict[str, Any] = {}
    #: Knobs that must have something to set in this config (the study scoped them here).
    strict: list[str] = []
    seed: int = 0
    #: The stage's work dir (absolute): checkpoints, logs, progress and the result go here.
    work_dir: str
    #: The checkpoint of an earlier stage to start from.
    load_from: str | None = None
    #: Run the test loop after training.
    test: bool = False
    #: Processes (ranks) of the stage: one per device; 1 = no distributed launch.
    nprocs: Annotated[int, Field(ge=1)] = 1
    #: Torch threads per process on CPU (None: torch's default).
    cpu_threads: int | None = None
    #: The trial and stage this spec belongs to (for logs).
    trial: int | None = None
    stage: str | None = None
    #: Load and resolve the config, write ``config.py`` and ``resolved.json``, train nothing.
    resolve_only: bool = False


class StageResult(_Record):
    """What a finished stage leaves in ``result.json``."""

    status: Literal["ok"] = "ok"
    #: Hash of the resolved config without its work dir: equal hashes train the same thing.
    config_hash: str | None = None
    #: knob -> the expanded config keys it changed.
    knobs: dict[str, list[str]] = {}
    #: The dumped, resolved config (``config.py``).
    config: str | None = None
    #: Validation metrics of the last validation, and every validation by epoch.
    val: dict[str, Any] = {}
    val_history: list[dict[str, Any]] = []
    #: Test metrics (when the stage tested).
    test: dict[str, Any] = {}
    #: Cost: train_gmacs, test_gmacs, params_m, peak_memory_mb, throughput, wall_time_s.
    cost: dict[str, float | None] = {}
    #: The newest checkpoint (what a later stage's ``load_from`` takes).
    checkpoint: str | None = None
    #: The checkpoint this run resumed from, when it resumed.
    resumed_from: str | None = None
    #: Another work dir that trained the identical resolved config and was reused.
    reused_from: str | None = None
    #: Processes (ranks) the stage ran on.
    nprocs: int = 1
    #: Where and when it ran (informational).
    slot: str | None = None
    device: str | None = None
    started: float | None = None
    ended: float | None = None
    load_from: str | None = None
    #: The machine it ran on (:func:`mats_lab.trial.machine.machine_label`).
    machine: str | None = None


def trial_machine(stages: list[dict]) -> str:
    """Where a trial's stages ran, from the per-stage records the sweep keeps (their
    ``machine``): one machine's line, several joined by ``"; "`` (sorted), ``""`` if none
    recorded one. A reused stage counts where it was trained."""
    return "; ".join(sorted({str(m) for stage in stages if (m := stage.get("machine"))}))


class TrainLine(_Record):
    kind: Literal["train"] = "train"
    epoch: int
    iter: int
    max_iters: int | None = None
    max_epochs: int | None = None
    loss: float | None = None
    #: The train step's other logged scalars, those whose names hold no ``loss`` (the parts
    #: ``loss`` sums): the pre-training's ``explained`` and ``zero_mse``, a recognizer's
    #: ``top1_acc``. ``None`` in files written before they were recorded.
    scalars: dict[str, float | None] | None = None
    #: Clips seen by this process since it started (resumed runs count from 0).
    samples: int | None = None
    time: float | None = None


class ValLine(_Record):
    kind: Literal["val"] = "val"
    epoch: int
    metrics: dict[str, Any]
    time: float | None = None


class TestLine(_Record):
    __test__ = False  # not a pytest test class

    kind: Literal["test"] = "test"
    metrics: dict[str, Any]
    time: float | None = None


ProgressLine = Annotated[TrainLine | ValLine | TestLine, Field(discriminator="kind")]
_PROGRESS: TypeAdapter[TrainLine | ValLine | TestLine] = TypeAdapter(ProgressLine)


def _check_version(data: Any, path: Path | str) -> None:
    if isinstance(data, dict) and data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise RecordError(
            f"{path}: record format version {data.get('version')!r}, this mats-lab reads "
            f"version {FORMAT_VERSION}: sweep and trial come from different mats-lab versions"
        )


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
        for e in exc.errors()
    )


def write_stage_spec(path: Path, spec: StageSpec) -> None:
    _write_atomic(path, spec.to_json())


def read_stage_spec(path: Path) -> StageSpec:
    """The stage spec in ``path``; :class:`RecordError` naming the file when it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: cannot read the stage spec ({exc})") from exc
    _check_version(data, path)
    try:
        return StageSpec.model_validate(data)
    except ValidationError as exc:
        raise RecordError(f"{path}: not a stage spec: {_errors(exc)}") from None


def write_result(path: Path, result: StageResult) -> None:
    """Write ``result.json`` atomically (a kill never leaves half a result)."""
    _write_atomic(path, result.to_json())


def read_result(path: Path) -> StageResult | None:
    """The stage result in ``path`` (a ``result.json`` or the work dir holding it); None when
    missing or cut short. A result of another format version raises :class:`RecordError`."""
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    _check_version(data, path)
    try:
        return StageResult.model_validate(data)
    except ValidationError as exc:
        raise RecordError(f"{path}: not a stage result: {_errors(exc)}") from None


def parse_progress_line(text: str) -> TrainLine | ValLine | TestLine | None:
    """One line of ``progress.jsonl``; None for a line cut by a kill or not a progress line."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    _check_version(data, "progress.jsonl")
    try:
        return _PROGRESS.validate_python(data)
    except ValidationError:
        return None


def read_progress_lines(path: Path) -> list[TrainLine | ValLine | TestLine]:
    """Every complete progress line of ``path`` (none when it is missing)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    lines = (parse_progress_line(line) for line in text.splitlines() if line.strip())
    return [line for line in lines if line is not None]


def append_progress(path: Path, line: TrainLine | ValLine | TestLine) -> None:
    """Append one progress line (a single ``write`` of a whole line)."""
    with open(path, "a") as handle:
        handle.write(line.model_dump_json() + "\n")
