"""The device pool: which slots are free, and the stage processes that run on the others.

A stage asks for ``n`` devices. The pool gives it ``n`` free slots on ``n`` distinct devices
(GPU slots: every GPU of them in ``CUDA_VISIBLE_DEVICES``; CPU slots: ``CUDA_VISIBLE_DEVICES=""``
and each rank with the slot's threads), starts the stage command on them in a process group of
its own (a multi-device stage's launcher and every rank it starts live in that group), tells
which stages have exited and frees their slots, and stops a stage by signalling its whole group.
No slot is ever held by two stages: a slot is either in ``free`` or in exactly one running stage.

Which waiting stage gets the free devices is :mod:`mats_lab.lab.packing`'s rule; the pool only
answers whether ``n`` devices are free.

Only the standard library and the lab's launch helpers are imported here.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from mats_lab.lab.launch import Slot, stage_env, start_stage
from mats_lab.protocol.records import StageSpec

__all__ = ["DevicePool", "PoolError", "StageProcess", "terminate"]

T = TypeVar("T")


class PoolError(RuntimeError):
    """A stage that can never run on this pool (it needs more devices than the pool has)."""


@dataclass
class StageProcess(Generic[T]):
    """One running stage: its slots (one per rank), its process, and what the caller tagged."""

    slots: tuple[Slot, ...]
    proc: subprocess.Popen
    tag: T
    started: float = field(default_factory=time.time)

    @property
    def label(self) -> str:
        """``gpu2+gpu5`` (or ``cpu0``): the devices, for logs and status lines."""
        return "+".join(s.label for s in self.slots)

    @property
    def first(self) -> int:
        """The lowest slot index (orders the status lines)."""
        return min(s.index for s in self.slots)


class DevicePool(Generic[T]):
    """Slots on devices; stages started on, followed on and stopped from them."""

    def __init__(self, slots: list[Slot]) -> None:
        if not slots:
            raise PoolError("the device pool has no slots")
        self.slots = list(slots)
        self.free: list[Slot] = sorted(slots, key=lambda s: s.index)
        self.running: list[StageProcess[T]] = []

    # -- capacity -----------------------------------------------------------------------------
    @property
    def devices(self) -> int:
        """Distinct devices: GPUs (each possibly shared by several slots), or CPU slots."""
        return len({s.label for s in self.slots})

    def free_devices(self) -> int:
        """Devices with at least one free slot: the most devices a stage can get right now."""
        return len({s.label for s in self.free})

    def fits(self, devices: int) -> bool:
        return devices <= self.free_devices()

    def check(self, stage: str, devices: int) -> None:
        """Refuse, before anything starts, a stage that needs more devices than the pool has."""
        if devices > self.devices:
            raise PoolError(
                f"stage {stage!r} needs {devices} devices, the device pool has {self.devices} "
                f"({', '.join(sorted({s.label for s in self.slots}))}); give it more devices "
                "(resources.devices / --devices) or lower the stage's 'devices'"
            )

    # -- starting -----------------------------------------------------------------------------
    def take(self, devices: int) -> tuple[Slot, ...]:
        """``devices`` free slots on distinct devices, lowest slot index first; removed from
        the free list. :class:`PoolError` when they are not free (call :meth:`fits` first)."""
        chosen: list[Slot] = []
        seen: set[str] = set()
        for slot in self.free:
            if slot.label not in seen:
                chosen.append(slot)
                seen.add(slot.label)
                if len(chosen) == devices:
                    break
        if len(chosen) < devices:
            raise PoolError(f"{devices} devices asked, {self.free_devices()} free")
        for slot in chosen:
            self.free.remove(slot)
        return tuple(chosen)

    def start(
        self,
        slots: tuple[Slot, ...],
        command: list[str],
        spec: StageSpec,
        spec_path: Path,
        log_path: Path,
        tag: T,
    ) -> StageProcess[T]:
        """Start ``command --spec spec_path`` on ``slots`` (from :meth:`take`)."""
        try:
            proc = start_stage(command, spec, spec_path, log_path, stage_env(slots))
        except BaseException:
            self._release(slots)
            raise
        stage = StageProcess(slots, proc, tag)
        self.running.append(stage)
        return stage

    # -- following ----------------------------------------------------------------------------
    def wait(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or less: until a running stage exits (Linux pidfds)."""
        fds: list[int] = []
        try:
            for stage in self.running:
                fds.append(os.pidfd_open(stage.proc.pid))
            if fds:
                select.select(fds, [], [], timeout)
                return
        except (AttributeError, OSError):  # no pidfd_open here, or the stage is already reaped
            pass
        finally:
            for fd in fds:
                os.close(fd)
        time.sleep(timeout)

    def ended(self) -> list[tuple[StageProcess[T], int]]:
        """The stages that exited since the last call, with their exit codes; slots freed."""
        out = []
        for stage in list(self.running):
            code = stage.proc.poll()
            if code is not None:
                self._finish(stage)
                out.append((stage, code))
        return out

    # -- stopping -----------------------------------------------------------------------------
    def stop(self, stage: StageProcess[T], grace: float = 10.0) -> None:
        """Stop every process of ``stage`` (its process group) and free its slots."""
        terminate(stage.proc, grace)
        if stage in self.running:
            self._finish(stage)

    def stop_all(self, grace: float = 10.0) -> list[StageProcess[T]]:
        """Stop every running stage (all signalled at once, then each waited for)."""
        stages = list(self.running)
        for stage in stages:
            _signal_group(stage.proc, signal.SIGTERM)
        for stage in stages:
            self.stop(stage, grace)
        return stages

    def _finish(self, stage: StageProcess[T]) -> None:
        self.running.remove(stage)
        self._release(stage.slots)

    def _release(self, slots: tuple[Slot, ...]) -> None:
        self.free.extend(slots)
        self.free.sort(key=lambda s: s.index)


def terminate(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (all ranks of a stage), SIGKILL it after
    ``grace`` seconds; the group is signalled even when its leader already exited, so ranks
    left behind by a dead launcher are stopped too."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(proc, signal.SIGKILL)  # the leader may be gone while a rank lingers
    proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the stage's process group (its id is the leader's pid)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        if proc.poll() is None:
            proc.send_signal(sig)
