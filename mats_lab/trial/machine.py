"""Which machine a stage ran on, in one line: CPU model, torch's CPU kernel level, torch
version and CUDA device.

Tiny trainings that sit on a plateau turn last-bit differences between CPUs' kernels into a
different run: the same study, seeds and thread count gave single trials up to 44 points apart
on two machines (benchmarks/README.md, "The same study on another machine"). Each stage result
records this line, each MLflow trial run carries it (tag ``machine``), and the report says when
its trials came from more than one.
"""

from __future__ import annotations

import platform

__all__ = ["cpu_model", "machine_label"]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_label() -> str:
    """``"<cpu model> | <CPU kernels> | torch <version>[ | <CUDA device>]"``, e.g.
    ``"Intel(R) Xeon(R) Processor | AVX512 | torch 2.13.0+cpu"``."""
    import torch

    parts = [cpu_model(), torch.backends.cpu.get_cpu_capability(), f"torch {torch.__version__}"]
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name(torch.cuda.current_device()))
    return " | ".join(parts)
