"""Which waiting stage gets the free devices: list order with backfilling and a reservation.

The rule (the sweep's, and the simulated list schedule's, so both pack the same way):

1. Waiting stages are scanned in priority order: stages of trials asked earlier first, then
   stages of trials not asked yet, in the sampler's (grid) order.
2. The first stage whose device count fits the free devices starts (backfilling: a smaller,
   later stage starts while a bigger one waits, so no device idles while a waiting stage
   would fit on it).
3. Every stage passed over because it did not fit counts one *skip* each time a later stage
   starts ahead of it. A stage skipped ``limit`` times *reserves*: no later stage starts until
   it has started, so freed devices gather for it and a big stage is never starved by a
   stream of small ones. The sweep uses ``limit`` = the pool's device count.

:func:`list_schedule` runs the rule with no overhead on stages of known lengths (optionally
with dependencies); :func:`best_makespan` finds the best makespan any schedule of a small
dependency graph can reach; :func:`area_bound` is the simple lower bound for large ones.

Only the standard library is imported here.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "Scan",
    "SimStage",
    "area_bound",
    "best_makespan",
    "list_schedule",
    "utilisation",
]


class Waiter(Protocol):
    skips: int


class Scan:
    """One pass over the waiting stages in priority order, ``free`` devices to give.

    Offer each ready stage in turn: :meth:`offer` says ``"start"`` (it fits: start it, the
    scan is over), ``"skip"`` (go on to the next) or ``"stop"`` (a stage reserves the devices:
    start nothing more this pass).
    """

    def __init__(self, free: int, limit: int) -> None:
        self.free = free
        self.limit = limit
        self.passed: list[Waiter] = []

    def offer(self, waiter: Waiter, devices: int) -> str:
        if devices <= self.free:
            for other in self.passed:
                other.skips += 1
            waiter.skips = 0
            return "start"
        if waiter.skips >= self.limit:
            return "stop"
        self.passed.append(waiter)
        return "skip"


@dataclass
class SimStage:
    """A stage of known length for the simulations: ``after`` names the stages it needs."""

    name: str
    devices: int
    length: float
    after: tuple[str, ...] = ()
    skips: int = field(default=0, compare=False)


def list_schedule(
    stages: Sequence[SimStage], devices: int, limit: int | None = None, gap: float = 0.0
) -> tuple[float, dict[str, tuple[float, float]]]:
    """Makespan and ``name -> (start, end)`` of :class:`Scan`'s rule on ``stages`` (priority =
    list order) with ``devices`` devices, ``gap`` seconds of overhead per start.

    Event-driven: at each stage end (and at time 0), the ready stages (every ``after`` stage
    ended) are scanned in list order until nothing more starts.
    """
    limit = devices if limit is None else limit
    for stage in stages:
        if stage.devices > devices:
            raise ValueError(f"stage {stage.name} needs {stage.devices} > {devices} devices")
    waiting = [SimStage(s.name, s.devices, s.length, s.after) for s in stages]
    done: set[str] = set()
    times: dict[str, tuple[float, float]] = {}
    running: list[tuple[float, int, str]] = []  # (end, devices, name)
    free = devices
    now = 0.0
    while waiting or running:
        while True:
            scan = Scan(free, limit)
            started = None
            for stage in waiting:
                if not all(a in done for a in stage.after):
                    continue
                verdict = scan.offer(stage, stage.devices)
                if verdict == "start":
                    started = stage
                if verdict != "skip":
                    break
            if started is None:
                break
            waiting.remove(started)
            free -= started.devices
            end = now + gap + started.length
            times[started.name] = (now + gap, end)
            heapq.heappush(running, (end, started.devices, started.name))
        if not running:
            raise ValueError(
                "stages wait on stages that never run: " + ", ".join(s.name for s in waiting)
            )
        now, used, name = heapq.heappop(running)
        free += used
        done.add(name)
        while running and running[0][0] <= now:
            _, used, name = heapq.heappop(running)
            free += used
            done.add(name)
    return max((end for _, end in times.values()), default=0.0), times


def area_bound(stages: Sequence[SimStage], devices: int) -> float:
    """A lower bound on any schedule's makespan: device-seconds / devices, or the longest
    chain of dependent stages, whichever is larger."""
    by_name = {s.name: s for s in stages}
    finish: dict[str, float] = {}

    def chain(name: str) -> float:
        if name not in finish:
            stage = by_name[name]
            finish[name] = stage.length + max((chain(a) for a in stage.after), default=0.0)
        return finish[name]

    area = sum(s.devices * s.length for s in stages) / devices
    return max(area, max((chain(s.name) for s in stages), default=0.0))


def best_makespan(stages: Sequence[SimStage], devices: int, max_stages: int = 9) -> float:
    """The shortest makespan any schedule of ``stages`` on ``devices`` devices reaches.

    Exact for small graphs: every order that respects the dependencies is placed by the serial
    schedule-generation scheme (each stage at the earliest time its dependencies have ended and
    its devices are free for its whole length), and the set of schedules it generates holds an
    optimal one. Devices are interchangeable, so a device count per instant is all it tracks.
    """
    if len(stages) > max_stages:
        raise ValueError(f"{len(stages)} stages: exact search is for at most {max_stages}")
    best = float("inf")
    names = [s.name for s in stages]
    by_name = {s.name: s for s in stages}
    for order in itertools.permutations(names):
        position = {n: i for i, n in enumerate(order)}
        if any(position[a] > position[n] for n in order for a in by_name[n].after):
            continue
        placed: list[tuple[float, float, int]] = []  # (start, end, devices)
        ends: dict[str, float] = {}
        for name in order:
            stage = by_name[name]
            ready = max((ends[a] for a in stage.after), default=0.0)
            start = _earliest(placed, ready, stage.length, stage.devices, devices)
            placed.append((start, start + stage.length, stage.devices))
            ends[name] = start + stage.length
            if ends[name] >= best:
                break
        else:
            best = min(best, max(ends.values(), default=0.0))
    return best


def _earliest(
    placed: list[tuple[float, float, int]], ready: float, length: float, need: int, total: int
) -> float:
    """The earliest start >= ``ready`` with ``need`` devices free for ``length`` seconds."""
    candidates = sorted({ready, *(end for _, end, _ in placed if end > ready)})
    for start in candidates:
        points = [start, *(s for s, _, _ in placed if start < s < start + length)]
        if all(sum(d for s, e, d in placed if s <= t < e) + need <= total for t in points):
            return start
    raise AssertionError("unreachable: the last end frees every device")


def utilisation(stages: Sequence[SimStage], devices: int, makespan: float) -> float:
    """Busy device-seconds over ``devices * makespan``."""
    if makespan <= 0:
        return 0.0
    return sum(s.devices * s.length for s in stages) / (devices * makespan)
