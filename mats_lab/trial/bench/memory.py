"""Peak memory of a training step, and the activations it stores for the backward pass.

Peak memory is measured in a fresh child process per workload
(``python -m mats_lab.trial.bench.child``): a process's peak resident set (``VmHWM``) only
grows, and the allocator keeps what earlier workloads freed, so two workloads measured in one
process would share one high-water mark. The child records its memory after imports, builds
the workload, runs a few steps and reports

- ``state``: the training state, counted from its tensors: weights, gradients, AdamW moments;
- ``activation_peak``: how far memory rises above that steady state during a step — stored
  activations plus temporaries at the worst moment — measured after a first step (which
  allocates the state and brings the library code it runs into memory, pages that would
  otherwise be counted as the step's);
- ``peak = state + activation_peak``.

On CPU the rise comes from the process (``/proc/self/status``: ``VmHWM`` reset through
``/proc/self/clear_refs`` at the steady state, heap trimmed first); on a GPU from the caching
allocator (``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``), which
counts tensors only, not the allocator's cache.

:func:`saved_activations` counts, in bytes, every tensor autograd stores for the backward
pass (once per storage, parameters excluded) and which part of the model stored it: the
figure the peak is explained against.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from mats_lab.trial.bench.spec import BenchSpec
from mats_lab.trial.bench.workloads import Workload

__all__ = [
    "child_measure",
    "measure_peak_memory",
    "proc_status_bytes",
    "reset_peak_rss",
    "saved_activations",
    "state_bytes",
    "trim_heap",
]

MB = 2**20


def proc_status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def trim_heap() -> None:
    """Return freed heap memory to the system (glibc ``malloc_trim``), so the resident set
    shows what is live; a no-op where there is no glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset the process's ``VmHWM`` to its current resident set (Linux ``clear_refs`` 5);
    ``False`` where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _part_of(module_name: str) -> str:
    if module_name.startswith("backbone"):
        return "encoder"
    if module_name.startswith("decoder"):
        return "decoder"
    return "head"


@contextmanager
def _tracking_part(model: nn.Module) -> Iterator[list[str]]:
    """Keep ``current[-1]`` at the part (encoder / decoder / head) whose module is running;
    every submodule is hooked, since the pre-trainer calls the encoder's pieces directly."""
    current = ["other"]

    def leave(*_: object) -> None:  # a hook returning a value would replace the output
        current.pop()

    handles = []
    for name, child in model.named_modules():
        if not name:
            continue
        part = _part_of(name)
        handles.append(child.register_forward_pre_hook(lambda *_, p=part: current.append(p)))
        handles.append(child.register_forward_hook(leave))
    try:
        yield current
    finally:
        for handle in handles:
            handle.remove()


def saved_activations(workload: Workload) -> dict[str, int]:
    """Bytes autograd stores during one forward of ``workload``, by part.

    Every tensor saved for backward is counted once per storage (views of one buffer count
    once), parameters excluded; the input clip, saved by the patch embedding for its weight
    gradient, counts under ``encoder``. Parts: ``encoder`` (the ViT), ``decoder`` (the MAE
    decoder), ``head`` (fine-tuning head), ``other`` (targets and loss).

    Returns:
        ``{part: bytes, ..., 'total': bytes}``.
    """
    model = workload.model
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, tuple[str, int]] = {}

    with _tracking_part(model) as current:

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in params and ptr not in seen and storage.nbytes() > 0:
                seen[ptr] = (current[-1], storage.nbytes())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = workload.loss()
    del loss
    parts: dict[str, int] = {"encoder": 0, "decoder": 0, "head": 0, "other": 0}
    for part, nbytes in seen.values():
        parts[part] += nbytes
    parts["total"] = sum(parts.values())
    return parts


def measure_peak_memory(spec: BenchSpec, name: str, timeout: float = 1800.0) -> dict[str, float]:
    """Run workload ``name`` in a fresh Python process and return its memory figures in MiB
    (``peak``, ``state``, ``activation_peak``, ``source``)."""
    cmd = [sys.executable, "-m", "mats_lab.trial.bench.child", spec.to_json(), name]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"memory child for {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def state_bytes(workload: Workload) -> int:
    """Bytes of the training state: weights, gradients and optimizer state tensors."""
    tensors = [p for p in workload.model.parameters()]
    tensors += [p.grad for p in tensors if p.grad is not None]
    for state in workload.optimizer.state.values():
        tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)


def child_measure(spec: BenchSpec, name: str) -> dict[str, float | str]:
    """The child's side of :func:`measure_peak_memory` (run in a fresh process).

    The first step allocates the gradients and optimizer moments and brings the library code
    it runs into memory; the peak is then taken over the following steps, from the steady
    state, and the steady state is counted from its tensors.
    """
    from mats_lab.trial.bench.workloads import build_workload

    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    cuda = spec.device == "cuda"
    workload = build_workload(spec, name)
    workload.step()
    state = state_bytes(workload)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        trim_heap()
        before = proc_status_bytes("VmRSS")
        if not reset_peak_rss():
            raise RuntimeError("cannot reset the peak resident set (/proc/self/clear_refs)")
    for _ in range(spec.memory_steps):
        workload.step()
    if cuda:
        torch.cuda.synchronize()
        rise = torch.cuda.max_memory_allocated() - before
        source = "torch.cuda.max_memory_allocated over the steady state"
    else:
        rise = proc_status_bytes("VmHWM") - before
        source = "process VmHWM over the steady state (clear_refs), state counted from tensors"
    return {
        "peak": (state + rise) / MB,
        "state": state / MB,
        "activation_peak": rise / MB,
        "source": source,
    }
