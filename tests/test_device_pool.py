"""Stages that span devices, with the fake trial command on simulated GPUs: the pool never gives a
device to two stages at once, a multi-device stage gets distinct devices (and its spec says how
many ranks), smaller stages backfill while a bigger one waits but never starve it, a stage too
big for the pool is refused before anything starts, and stopping the sweep stops every process
of a multi-process stage."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mats_lab.lab.launch import Slot, make_slots, stage_env
from mats_lab.lab.pool import DevicePool, PoolError
from mats_lab.lab.sweep import Sweep, SweepOptions
from mats_lab.protocol.spec import load_study

FAKE = [sys.executable, "-m", "mats_lab.lab.fake_stage"]
FT = "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
PT = "mm_configs/mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"


def study_file(tmp_path: Path, stages: list[dict], space: dict, devices) -> Path:
    data = {
        "name": "pool",
        "stages": stages,
        "space": space,
        "resources": {"devices": devices},
        "command": FAKE,
        "retries": 0,
        "output": str(tmp_path / "study"),
    }
    path = tmp_path / "pool.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_sweep(path: Path, **options) -> tuple[int, str]:
    out = io.StringIO()
    code = Sweep(load_study(path), path, SweepOptions(out=out, poll=0.05, **options)).run()
    return code, out.getvalue()


def results(tmp_path: Path) -> list[dict]:
    out = []
    for file in sorted((tmp_path / "study" / "stages").glob("*/result.json")):
        result = json.loads(file.read_text())
        spec = json.loads((file.parent / "stage.json").read_text())
        result["stage"] = spec["stage"]
        result["trial"] = spec["trial"]
        result["spec_nprocs"] = spec["nprocs"]
        result["cpu_threads"] = spec["cpu_threads"]
        out.append(result)
    return out


def overlaps(intervals: list[tuple[float, float]]) -> bool:
    intervals = sorted(intervals)
    return any(b[0] < a[1] for a, b in zip(intervals, intervals[1:], strict=False))


# -- the pool alone -----------------------------------------------------------------------------
def test_take_gives_distinct_devices_and_frees_them():
    pool: DevicePool[None] = DevicePool(make_slots([3, 5, 7], trials_per_device=2))
    assert pool.devices == 3 and pool.free_devices() == 3
    two = pool.take(2)
    assert [s.gpu for s in two] == [3, 5]  # one slot on each of two GPUs, never two on one
    one = pool.take(1)
    assert one[0].gpu == 3  # the GPU's second slot
    assert pool.free_devices() == 2 and not pool.fits(3)
    with pytest.raises(PoolError, match="3 devices asked, 2 free"):
        pool.take(3)
    pool._release(two)
    assert pool.free_devices() == 3 and len(pool.free) == 5


def test_stage_env_lists_every_gpu_and_gives_cpu_ranks_their_threads():
    env = stage_env((Slot(0, 2, 4), Slot(3, 5, 4)))
    assert env["CUDA_VISIBLE_DEVICES"] == "2,5"
    assert env["MATS_LAB_SLOT"] == "gpu2+gpu5"
    cpu = stage_env((Slot(0, None, 3), Slot(1, None, 3)))
    assert cpu["CUDA_VISIBLE_DEVICES"] == "" and cpu["OMP_NUM_THREADS"] == "3"


def test_a_stage_bigger_than_the_pool_is_refused_before_anything_starts(tmp_path):
    stages = [
        {"name": "pretrain", "config": PT, "devices": 4, "overrides": {"fake.duration": 0.1}},
        {"name": "finetune", "config": FT, "load_from": "pretrain"},
    ]
    path = study_file(tmp_path, stages, {"keep_ratio": {"grid": [0.5]}}, devices=[0, 1])
    refused = r"stage 'pretrain' needs 4 devices, .* has 2 \(gpu0, gpu1\)"
    with pytest.raises(PoolError, match=refused):
        Sweep(load_study(path), path, SweepOptions(out=io.StringIO()))
    assert not (tmp_path / "study").exists()  # no study, no journal, no stage dir
    cli = subprocess.run(
        [sys.executable, "-m", "mats_lab.cli.main", "sweep", str(path), "--devices", "0,1"],
        capture_output=True,
        text=True,
    )
    assert cli.returncode != 0
    assert "stage 'pretrain' needs 4 devices" in cli.stderr and "has 2" in cli.stderr
    assert not (tmp_path / "study").exists()


# -- sweeps on simulated GPUs -------------------------------------------------------------------
def test_mixed_sizes_never_share_a_device_and_get_distinct_gpus(tmp_path):
    """Trials of three stages (1, 2 and 4 GPUs) on 6 simulated GPUs: every stage got as many
    distinct GPUs as it asked for, its spec said as many ranks, and no GPU ever ran two."""
    stages = [
        {"name": "one", "config": PT, "devices": 1},
        {"name": "two", "config": PT, "devices": 2, "load_from": "one"},
        {"name": "four", "config": FT, "devices": 4, "load_from": "two"},
    ]
    space = {"fake.duration": {"grid": [0.2, 0.35, 0.5, 0.65, 0.8]}}
    path = study_file(tmp_path, stages, space, devices=[0, 1, 2, 3, 4, 5])
    code, out = run_sweep(path)
    assert code == 0, out
    done = results(tmp_path)
    assert len(done) == 15
    want = {"one": 1, "two": 2, "four": 4}
    per_gpu: dict[str, list[tuple[float, float]]] = {}
    for r in done:
        gpus = r["device"].split(",")
        assert len(set(gpus)) == len(gpus) == want[r["stage"]] == r["nprocs"] == r["spec_nprocs"]
        assert r["slot"] == "+".join(f"gpu{g}" for g in gpus)
        for gpu in gpus:
            per_gpu.setdefault(gpu, []).append((r["started"], r["ended"]))
    assert set(per_gpu) <= {str(g) for g in range(6)}
    for gpu, intervals in per_gpu.items():
        assert not overlaps(intervals), f"gpu {gpu} ran two stages at once: {sorted(intervals)}"


def test_multi_rank_stages_on_cpu_slots(tmp_path):
    stages = [{"name": "train", "config": FT, "devices": 2, "overrides": {"fake.duration": 0.2}}]
    path = study_file(tmp_path, stages, {"keep_ratio": {"grid": [0.3, 0.6]}}, devices=4)
    code, out = run_sweep(path)
    assert code == 0, out
    for r in results(tmp_path):
        assert r["device"] == "" and r["nprocs"] == 2 and r["cpu_threads"] >= 1
        assert len(r["slot"].split("+")) == 2  # two CPU slots, one per rank


def test_small_stages_backfill_while_a_big_one_waits_but_never_starve_it(tmp_path):
    """On 4 GPUs: trial 0 ends its 1-GPU stage first and then needs all 4 GPUs for its second
    stage while 3 long (3 s) 1-GPU stages still run. Later trials' 1-GPU stages start on the
    free GPU meanwhile (backfilling), but at most 4 (the pool's size, the reservation limit)
    overtake it."""
    stages = [
        {"name": "small", "config": PT, "devices": 1},
        {
            "name": "big",
            "config": FT,
            "devices": 4,
            "load_from": "small",
            "overrides": {"fake.duration.big": 0.2},
        },
    ]
    # distinct lengths: equal ones would be one grid point (one trial)
    lengths = [0.2, 3.0, 3.01, 3.02, 0.3, 0.31, 0.32, 0.33, 0.34, 0.35, 0.36, 0.37]
    space = {"fake.duration.small": {"grid": lengths}}
    path = study_file(tmp_path, stages, space, devices=[0, 1, 2, 3])
    code, out = run_sweep(path)
    assert code == 0, out
    done = results(tmp_path)
    assert len(done) == 2 * len(lengths)
    small = {r["trial"]: r for r in done if r["stage"] == "small"}
    big0 = next(r for r in done if r["stage"] == "big" and r["trial"] == 0)
    ready = small[0]["ended"]
    # Trials 1-3 (the long stages) are the first fill of the pool; on a loaded machine trial 0's
    # 0.2 s stage can end before the sweep has launched them, and they then start after
    # `ready` without overtaking anything (the big stage waits only once the sweep has reaped
    # trial 0's first stage). The short stages of trials 4+ can start only on the device that
    # reaping frees, so every one of them that starts before the big stage overtook it.
    overtook = [t for t, r in small.items() if t > 3 and ready < r["started"] < big0["started"]]
    assert overtook, "no later stage used the free GPUs while the big stage waited"
    assert len(overtook) <= 4, f"{len(overtook)} stages overtook the big stage: starved"
    per_gpu: dict[str, list[tuple[float, float]]] = {}
    for r in done:
        for gpu in r["device"].split(","):
            per_gpu.setdefault(gpu, []).append((r["started"], r["ended"]))
    assert all(not overlaps(v) for v in per_gpu.values())


@pytest.mark.parametrize(
    ("sig", "detached"),
    [
        (signal.SIGINT, True),  # the sweep signals the stage's whole process group
        (signal.SIGKILL, False),  # the stage dies with the sweep, its ranks with the stage
    ],
)
def test_stopping_the_sweep_stops_every_rank_of_a_stage(tmp_path, sig, detached):
    overrides = {"fake.duration": 60, "fake.ranks_detached": detached}
    stages = [{"name": "train", "config": FT, "devices": 3, "overrides": overrides}]
    path = study_file(tmp_path, stages, {"keep_ratio": {"grid": [0.5]}}, devices=3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mats_lab.cli.main", "sweep", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pid_files = tmp_path / "study" / "stages"
    end = time.time() + 60
    while not list(pid_files.glob("*/ranks.pid")) and time.time() < end:
        time.sleep(0.1)
    pid_file = next(pid_files.glob("*/ranks.pid"))
    time.sleep(0.2)
    ranks = [int(p) for p in pid_file.read_text().split()]
    assert len(ranks) == 2  # ranks 1 and 2; rank 0 is the stage process itself
    assert all(_alive(p) for p in ranks)
    os.kill(proc.pid, sig)
    proc.communicate(timeout=60)
    end = time.time() + 10
    while any(_alive(p) for p in ranks) and time.time() < end:
        time.sleep(0.1)
    assert not any(_alive(p) for p in ranks), "a rank outlived the stopped sweep"


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# -- the packing rule and the schedules the benchmark compares against ------------------------
def test_list_schedule_backfills_then_reserves_on_a_hand_made_example():
    from mats_lab.lab.packing import SimStage, list_schedule

    stages = [
        SimStage("X", 1, 4.0),
        SimStage("Y", 2, 1.0),  # waits for both devices while X runs
        SimStage("Z", 1, 1.0),
        SimStage("W", 1, 1.0),
    ]
    # limit 2: Z (t=0) and W (t=1) backfill past Y; Y starts when X ends
    makespan, times = list_schedule(stages, devices=2)
    assert times == {"X": (0, 4), "Z": (0, 1), "W": (1, 2), "Y": (4, 5)}
    assert makespan == 5
    # limit 1: Y reserves after one skip, so W waits until Y has started
    makespan, times = list_schedule(stages, devices=2, limit=1)
    assert times["Y"] == (4, 5) and times["W"] == (5, 6) and makespan == 6
    with pytest.raises(ValueError, match="needs 2 > 1 devices"):
        list_schedule(stages, devices=1)


def test_best_makespan_and_bounds_of_a_dependency_graph():
    from mats_lab.lab.packing import SimStage, area_bound, best_makespan, list_schedule, utilisation

    # two 8-GPU pre-trainings, three 4-GPU fine-tunings: two after P2, one after P1
    stages = [
        SimStage("P1", 8, 4.0),
        SimStage("F0", 4, 2.0, ("P1",)),
        SimStage("P2", 8, 4.0),
        SimStage("F1", 4, 2.0, ("P2",)),
        SimStage("F2", 4, 2.0, ("P2",)),
    ]
    assert area_bound(stages, 8) == 11  # 88 GPU-seconds / 8 GPUs
    assert best_makespan(stages, 8) == 12  # three 4-GPU stages cannot pair up
    makespan, times = list_schedule(stages, 8)
    assert times["F0"] == (4, 6) and times["P2"] == (6, 10) and makespan == 12
    assert utilisation(stages, 8, 12) == pytest.approx(88 / 96)
    # a chain bounds it from below too: one 1-GPU stage after another
    chain = [SimStage("a", 1, 3.0), SimStage("b", 1, 2.0, ("a",))]
    assert area_bound(chain, 4) == 5 and best_makespan(chain, 4) == 5
