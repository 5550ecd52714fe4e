"""``run_bench``: measure the four workloads pair by pair, then memory and the data pipeline.

For each pair (VideoMAE / MATS pre-training, full / MATS fine-tuning) both models are built
with the same weights seed and batch, then timed interleaved — baseline step, MATS step —
after ``warmup`` rounds, while a :class:`SelectionProbe` times the scoring and selection
inside each MATS step; their MACs and stored activations are counted; the models are freed
before the next pair. Peak memory is taken in one fresh child process per workload
(:mod:`mats_lab.trial.bench.memory`).
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mats_lab.trial.bench.memory import measure_peak_memory, saved_activations
from mats_lab.trial.bench.pipeline import pipeline_throughput
from mats_lab.trial.bench.result import BenchResult, WorkloadFigures
from mats_lab.trial.bench.selection import SelectionProbe
from mats_lab.trial.bench.spec import PAIRS, BenchSpec
from mats_lab.trial.bench.timing import interleaved
from mats_lab.trial.bench.workloads import build_workload, token_counts
from mats_lab.trial.flops import count_macs, count_train_macs
from mats_lab.trial.machine import cpu_model

__all__ = ["busy_cpus", "environment", "run_bench"]

MB = 2**20


def busy_cpus(seconds: float = 1.0) -> float | None:
    """How many CPUs were busy over the next ``seconds`` (all processes, from
    ``/proc/stat``); ``None`` where there is no ``/proc/stat``."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return round((1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1), 2)


def environment(spec: BenchSpec) -> dict:
    """Date, hardware, threads and versions of this run."""
    hardware = f"{cpu_model()}, {os.cpu_count()} logical CPUs"
    if spec.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        hardware = f"{props.name} ({props.total_memory / 2**30:.0f} GiB); host {hardware}"
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "hardware": hardware,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "busy_cpus_before": busy_cpus(),
    }


def _pair_figures(
    spec: BenchSpec, names: tuple[str, str]
) -> tuple[dict[str, WorkloadFigures], str, list[float], list[float]]:
    """Time, count and free one pair; returns the figures, the MATS workload's name and its
    selection spans (wall, CPU seconds) during the timed steps."""
    assert spec.batch is not None
    workloads = {name: build_workload(spec, name) for name in names}
    mats_name = names[1]
    calls: dict[str, Callable[[], object]] = {name: w.step for name, w in workloads.items()}
    with SelectionProbe(workloads[mats_name].backbone) as probe:
        times = interleaved(calls, spec.device, spec.warmup, spec.repeats)
    select_wall, select_cpu = probe.spans()  # one per MATS step, warm-up first
    figures = {}
    for name, w in workloads.items():
        w.optimizer.zero_grad(set_to_none=True)
        figures[name] = WorkloadFigures(
            step_s=times.wall[name],
            step_cpu_s=times.cpu[name],
            train_gmacs=count_train_macs(w.loss),
            forward_gmacs_per_clip=count_macs(w.loss) / spec.batch,
            params_m=sum(p.numel() for p in w.model.parameters()) / 1e6,
            tokens=token_counts(w),
            saved_activations_mb={k: v / MB for k, v in saved_activations(w).items()},
            batch=spec.batch,
        )
        w.optimizer.zero_grad(set_to_none=True)
    del workloads, calls
    gc.collect()
    if spec.device == "cuda":
        torch.cuda.empty_cache()
    repeats = spec.repeats
    return figures, mats_name, select_wall[-repeats:], select_cpu[-repeats:]


def run_bench(
    spec: BenchSpec,
    memory: bool = True,
    progress: Callable[[str], None] | None = None,
) -> BenchResult:
    """Measure everything for ``spec`` on its device.

    Args:
        spec: what to run (``None`` clip fields take the model's defaults).
        memory: measure peak memory in child processes (seconds per workload).
        progress: called with a short line before each phase.
    """
    say = progress or (lambda _: None)
    spec = spec.resolved()
    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: this torch build sees no CUDA device")
    env = environment(spec)
    workloads: dict[str, WorkloadFigures] = {}
    selection: dict[str, list[float]] = {}
    selection_cpu: dict[str, list[float]] = {}
    for pair in spec.pairs:
        names = PAIRS[pair]
        say(f"timing {pair}: {' vs '.join(names)} ({spec.warmup} warm-up + {spec.repeats})")
        figures, mats_name, select_wall, select_cpu = _pair_figures(spec, names)
        workloads.update(figures)
        selection[mats_name] = select_wall
        selection_cpu[mats_name] = select_cpu
    if memory:
        for name, fig in workloads.items():
            say(f"peak memory of {name} (fresh process)")
            fig.memory_mb = measure_peak_memory(spec, name)
    pipeline = None
    notes = []
    if spec.video is not None:
        if Path(spec.video).is_file():
            assert spec.frames is not None and spec.size is not None
            say(f"data pipeline on {spec.video}")
            pipeline = pipeline_throughput(
                spec.video, spec.frames, spec.size, spec.pipeline_repeats, spec.tubelet_size
            )
        else:
            notes.append(f"note: {spec.video} not found, data pipeline not measured")
    env["load_after"] = [round(x, 2) for x in os.getloadavg()]
    busy = env["busy_cpus_before"]  # measured while this process was idle
    if spec.device == "cpu" and env["threads"] > 1 and busy is not None and busy >= 0.5:
        notes.append(
            f"note: {busy} of {os.cpu_count()} CPUs were busy with other processes just "
            "before the run. "
            f"With {env['threads']} threads, torch's threads then wait for each other and "
            "steps can take many times longer; rerun on a quiet machine or with --threads 1."
        )
    return BenchResult(spec, env, workloads, selection, selection_cpu, pipeline, notes)
