"""Wall-clock timing that is fair to both arms of a comparison.

The callables of a comparison run interleaved — ``A B A B ...`` — after ``warmup`` untimed
rounds, so a load change on a shared machine hits both arms alike. On a GPU every timed
call is bracketed by ``torch.cuda.synchronize`` (kernels run asynchronously; without it the
clock measures the launch, not the work).

Each call gets two clocks: wall time (what a step costs) and the process's CPU time (what
it computed). On a CPU shared with other jobs, a single-threaded process's CPU time does not
count the time it waited for a core, so its ratios stay put while wall-time ratios wander;
with several threads it also counts threads spinning at barriers, and on a GPU it measures
only the host.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Timings", "interleaved", "paired_ratio", "sync", "timed"]


def sync(device: torch.device | str) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device | str) -> tuple[float, float]:
    """``(wall seconds, process CPU seconds)`` of one call of ``fn``, queued device work
    included."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


@dataclass
class Timings:
    """Seconds per call, ``{name: [...]}``, by wall clock and by process CPU time."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def interleaved(
    fns: dict[str, Callable[[], object]],
    device: torch.device | str,
    warmup: int,
    repeats: int,
) -> Timings:
    """Time each callable ``repeats`` times, in rounds that call every one once, in order,
    after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out = Timings({name: [] for name in fns}, {name: [] for name in fns})
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = timed(fn, device)
            out.wall[name].append(wall)
            out.cpu[name].append(cpu)
    return out


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of ``numerator[i] / denominator[i]`` (robust to slow drifts)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))
