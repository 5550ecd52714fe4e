"""Device slots and trial-stage subprocesses.

A slot is one place a stage may run: a GPU (``CUDA_VISIBLE_DEVICES=<id>``, possibly shared by
``trials_per_device`` stages) or a share of the CPU cores. A stage takes one slot per device
it needs (:mod:`mats_lab.lab.pool` chooses them). A stage is the trial command (the MMEngine
stage runner by default) with ``--spec STAGE.json``, its output appended to the stage's log,
in its own process group (so stopping it reaches every rank it launched). The child dies with
the sweep (``PR_SET_PDEATHSIG`` on Linux), so a killed sweep leaves no orphan training behind
to race the next run for the same work dir.

Only the standard library and :mod:`mats_lab.protocol` are imported here.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mats_lab.protocol.records import StageSpec, write_stage_spec

__all__ = [
    "DEFAULT_COMMAND",
    "Slot",
    "detect_gpus",
    "log_tail",
    "make_slots",
    "stage_env",
    "start_stage",
]

#: The stage runner that trains one stage through MMEngine (see ``mats_lab.trial.stage_run``).
DEFAULT_COMMAND = [sys.executable, "-m", "mats_lab.trial.stage_run"]


@dataclass(frozen=True)
class Slot:
    """One place to run a stage."""

    index: int
    gpu: int | None  # GPU id, or None for a CPU slot
    threads: int  # CPU threads for the stage's torch (and OMP)

    @property
    def label(self) -> str:
        """The device: ``gpu3`` (shared by that GPU's slots) or ``cpu0`` (a CPU slot is a
        device of its own)."""
        return f"gpu{self.gpu}" if self.gpu is not None else f"cpu{self.index}"


def stage_env(slots: list[Slot] | tuple[Slot, ...]) -> dict[str, str]:
    """The environment of a stage on ``slots`` (one per rank): every GPU of them in
    ``CUDA_VISIBLE_DEVICES`` (empty on CPU slots), each rank with the first slot's threads."""
    env = dict(os.environ)
    gpus = [str(s.gpu) for s in slots if s.gpu is not None]
    threads = str(slots[0].threads)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    env["OMP_NUM_THREADS"] = threads
    env["MKL_NUM_THREADS"] = threads
    env["PYTHONUNBUFFERED"] = "1"
    env["MATS_LAB_SLOT"] = "+".join(s.label for s in slots)
    return env


def detect_gpus() -> list[int]:
    """GPU ids visible to this process (``CUDA_VISIBLE_DEVICES`` or ``nvidia-smi -L``)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [int(v) for v in visible.split(",") if v.strip().isdigit()]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    return [i for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def make_slots(
    devices: list[int] | int | str, trials_per_device: int, cpu_threads: int | None = None
) -> list[Slot]:
    """Slots for ``devices``: GPU ids, a number of CPU slots, or ``auto``."""
    cores = os.cpu_count() or 1
    if devices == "auto":
        gpus = detect_gpus()
        devices = gpus if gpus else 1
    if isinstance(devices, int):
        count = devices * trials_per_device
        threads = cpu_threads or max(1, cores // count)
        return [Slot(i, None, threads) for i in range(count)]
    threads = cpu_threads or max(1, cores // max(1, len(devices) * trials_per_device))
    slots: list[Slot] = []
    for gpu in devices:
        for _ in range(trials_per_device):
            slots.append(Slot(len(slots), int(gpu), threads))
    return slots


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setpgrp()  # its own group: a Ctrl-C in the terminal reaches the sweep, which decides


@functools.cache
def pdeathsig_prefix() -> tuple[str, ...]:
    """``setpriv --pdeathsig KILL --`` where util-linux's setpriv has it, else ``()``.

    The prefix sets ``PR_SET_PDEATHSIG`` without a ``preexec_fn``, which would force a full
    ``fork()`` of the sweep (tens of ms per start, blocking the scheduling loop) instead of
    ``vfork()`` (well under a millisecond).
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return ()
    try:
        usage = subprocess.run([setpriv, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ()
    return (setpriv, "--pdeathsig", "KILL", "--") if "--pdeathsig" in usage.stdout else ()


def start_stage(
    command: list[str], spec: StageSpec, spec_path: Path, log_path: Path, env: dict[str, str]
) -> subprocess.Popen:
    """Write ``spec`` to ``spec_path`` and start ``command --spec spec_path`` with ``env``
    (:func:`stage_env`), in a process group of its own (the group id is its pid)."""
    write_stage_spec(spec_path, spec)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed by the caller
    prefix = pdeathsig_prefix()
    linux = sys.platform.startswith("linux")
    try:
        return subprocess.Popen(  # noqa: S603 - an argument list, never a shell
            [*prefix, *command, "--spec", str(spec_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            process_group=0 if prefix else None,  # its own group, as _die_with_parent does
            preexec_fn=_die_with_parent if linux and not prefix else None,  # noqa: PLW1509
        )
    finally:
        log.close()


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log (empty when missing)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
