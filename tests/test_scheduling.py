"""The scheduling benchmark (benchmarks/scheduling.py) at a small size: 12 fake trials on 4
simulated GPUs. Asserts what must hold on any machine, never timings: every grid point ran
exactly once, and no device ever ran more trials at once than trials_per_device allows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "scheduling_bench", REPO / "benchmarks" / "scheduling.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_helpers(bench):
    assert bench.list_schedule([3, 2, 2, 1], 2) == 4
    assert bench.list_schedule([1, 1, 1], 2, gap=0.5) == 2.5
    assert bench.max_concurrency([(0, 1), (1, 2)]) == 1  # back to back is not an overlap
    assert bench.max_concurrency([(0, 2), (1, 3), (1.5, 4)]) == 3
    assert bench.handoff_gaps([(0, 1), (1.2, 2), (2.5, 3)], 1) == pytest.approx([0.2, 0.5])
    lengths = bench.draw_lengths(50, 1.0, 0.5, seed=3)
    assert len(set(lengths)) == 50 and all(0.5 <= x <= 1.5 for x in lengths)
    assert lengths == bench.draw_lengths(50, 1.0, 0.5, seed=3)


@pytest.mark.parametrize(("devices", "per_device"), [(4, 1), (2, 2)])
def test_small_benchmark_runs_each_point_once_without_overlap(
    bench, tmp_path, capsys, devices, per_device
):
    trials = 12
    argv = ["--trials", str(trials), "--devices", str(devices)]
    argv += ["--trials-per-device", str(per_device), "--mean", "0.65", "--spread", "0.5"]
    argv += ["--order", "random", "--tolerance", "1000", "--keep", str(tmp_path / "run")]
    code = bench.main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "OK: every check passed" in out

    lengths = sorted(bench.draw_lengths(trials, 0.65, 0.5, seed=0))
    stages = bench.read_stages(tmp_path / "run" / "study")
    assert sorted(s["duration"] for s in stages) == lengths  # every point ran ...
    assert all(s["attempts"] == 1 for s in stages)  # ... once
    assert bench.count_completed(tmp_path / "run" / "study") == (trials, trials)
    per_device_runs: dict[str, list[tuple[float, float]]] = {}
    for s in stages:
        per_device_runs.setdefault(s["device"], []).append((s["start"], s["end"]))
    assert set(per_device_runs) == {str(d) for d in range(devices)}  # CUDA_VISIBLE_DEVICES
    assert max(bench.max_concurrency(v) for v in per_device_runs.values()) <= per_device
