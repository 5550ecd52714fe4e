"""The scheduling benchmark (benchmarks/scheduling.py) at a small size: 12 fake trials on 4
simulated GPUs. Asserts what must hold on any machine, never timings: every grid point ran
exactly once, and no device ever ran more trials at once than trials_per_device allows."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmark_module import load_benchmark

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("scheduling")


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


def test_device_checks_catch_a_shared_gpu_and_a_short_stage(bench):
    ok = {"dir": "a", "gpus": ["0", "1"], "nprocs": 2, "asked": 2, "start": 0.0, "end": 1.0}
    after = ok | {"dir": "b", "gpus": ["1"], "nprocs": 1, "asked": 1, "start": 1.0, "end": 2.0}
    assert bench.device_failures([ok, after]) == []  # back to back on GPU 1
    clash = after | {"start": 0.5}
    assert bench.device_failures([ok, clash]) == ["GPU 1 ran two stages at once"]
    short = ok | {"gpus": ["0"]}  # two ranks asked, one GPU given
    assert bench.device_failures([short]) == ["a: 2 ranks asked, GPUs ['0']"]
    runs = [
        ok | {"stage": "two", "trial": 0, "load_from": "x/epoch_1.ckpt"},
        ok | {"dir": "x", "stage": "one", "trial": 0, "load_from": ""},
    ]
    stages = bench.sim_stages(runs, ["one", "two"])
    assert [(s.name, s.devices, s.after) for s in stages] == [("x", 2, ()), ("a", 2, ("x",))]


def test_mixed_scenario_runs_and_checks_devices(bench, tmp_path, capsys):
    argv = ["--scenario", "mixed", "--trials", "3", "--devices", "4", "--mean", "0.4"]
    argv += ["--spread", "0.5", "--tolerance", "1000", "--keep", str(tmp_path / "run")]
    code = bench.main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "OK: every check passed" in out and "list schedule" in out
    runs = bench.read_multi(tmp_path / "run" / "study")
    assert sorted(len(r["gpus"]) for r in runs) == [1, 1, 1, 2, 2, 2, 4, 4, 4]
    assert bench.device_failures(runs) == []
