"""How well ``mats-lab sweep`` packs trials onto devices, and what it costs per trial.

Builds a grid study whose only variable is ``fake.duration`` (the fake trial command of
``mats_lab.lab.fake_stage``: no model, it sleeps), one grid point per trial with lengths drawn
from a seeded ``numpy.random.Generator``; runs ``mats-lab sweep`` on it as a subprocess with
simulated GPUs (``--devices 0,1,...``: ``CUDA_VISIBLE_DEVICES`` per slot, no GPU needed); then
reads every stage's ``result.json`` (start, end, device) and prints::

    ideal makespan     max(total trial time / slots, longest trial)
    list schedule      the same trials in the same order on the same slots with zero overhead
    measured makespan  first trial start -> last trial end, and its ratio to the ideal
    per device         the most trials ever running at once (must be <= trials_per_device)
    overhead           per trial: the gap between a trial's end and the next start on its slot;
                       idle slot time per trial; sweep start-up, tail and total wall time

    python benchmarks/scheduling.py                        # 64 trials, 8 devices, longest first
    python benchmarks/scheduling.py --order random         # the same lengths in random order
    python benchmarks/scheduling.py --trials 16 --devices 4 --mean 1 --keep /tmp/bench

Trial time is what the trial itself measures (``started``..``ended`` in its result.json), so
everything else, the trial command's interpreter start included, counts as platform overhead.
The grid is queued in ``--order``: ``longest`` first (default) or ``random``. The platform does
not know trial lengths; in random order even a zero-overhead list schedule ends well past the
ideal (an end-game imbalance of about half a trial), which the ``list schedule`` line shows.
The checks, exit status 1 when one fails: the sweep exits 0; every grid point ran exactly
once; no device ever ran more than ``trials_per_device`` trials at once; the makespan is within
``--tolerance`` (5 %) of the ideal, or, with ``--order random``, of the zero-overhead list
schedule of that order.

Stages that span devices (``--scenario``):

- ``mixed``: ``--trials`` trials (default 16) of three chained stages on 1, 2 and 4 simulated
  GPUs, each stage's length drawn as above. Prints the makespan next to the zero-overhead list
  schedule of the same stages under the sweep's own packing rule
  (:func:`mats_lab.lab.packing.list_schedule`, measured lengths, trial order) and the
  device-seconds lower bound; checks that no GPU ever ran two stages at once, that every stage
  got as many distinct GPUs as it asked for, and that the makespan is within ``--tolerance``
  (default 10 % here) of that list schedule.
- ``k400``: the stages of ``studies/gpu/keep_ratio_k400.yaml`` (2 pre-trainings shared by 5
  fine-tunings) with the fake command, each stage as long as ``--work`` device-seconds over its
  device count (perfect scaling assumed); ``--stage-devices pretrain=1,finetune=1`` overrides
  the file's ``devices``. Prints the GPU utilisation next to the best its dependency graph
  allows (:func:`mats_lab.lab.packing.best_makespan`, exact for these 7 stages).

    python benchmarks/scheduling.py --scenario mixed
    python benchmarks/scheduling.py --scenario k400
    python benchmarks/scheduling.py --scenario k400 --stage-devices pretrain=1,finetune=1

One file for the three scenarios (over 400 lines): they share the study runner, the result
reader and the checks, and the benchmark is run as one script.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from mats_lab.lab import packing
from mats_lab.lab.packing import SimStage, area_bound, best_makespan, utilisation

REPO = Path(__file__).resolve().parents[1]
CONFIG = "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"  # only hashed, never built


def draw_lengths(trials: int, mean: float, spread: float, seed: int) -> list[float]:
    """``trials`` distinct lengths, uniform in ``mean * (1 +- spread)``, rounded to ms."""
    rng = np.random.default_rng(seed)
    lengths: list[float] = []
    while len(lengths) < trials:
        value = round(float(rng.uniform(mean * (1 - spread), mean * (1 + spread))), 3)
        if value not in lengths:  # equal lengths would be one grid point (and one stage run)
            lengths.append(value)
    return lengths


def write_study(folder: Path, lengths: list[float], devices: list[int], per_device: int) -> Path:
    study = {
        "name": "scheduling-bench",
        "stages": [{"name": "train", "config": str(REPO / CONFIG)}],
        "space": {"fake.duration": {"grid": lengths}},
        "resources": {"devices": devices, "trials_per_device": per_device},
        "retries": 0,
        "command": [sys.executable, "-m", "mats_lab.lab.fake_stage"],
        "output": str(folder / "study"),
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def list_schedule(lengths: list[float], slots: int, gap: float = 0.0) -> float:
    """Makespan of greedy list scheduling in the given order, ``gap`` seconds per hand-off."""
    free = [0.0] * slots
    end = 0.0
    for length in lengths:
        start = heapq.heappop(free)
        end = max(end, start + length)
        heapq.heappush(free, start + length + gap)
    return end


def max_concurrency(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = peak = 0
    for _, step in events:  # an end sorts before a start at the same instant
        now += step
        peak = max(peak, now)
    return peak


def handoff_gaps(intervals: list[tuple[float, float]], lanes: int) -> list[float]:
    """Gaps between a trial's end and the next start on the same slot of one device."""
    ends: list[float] = []  # end time of each busy lane's last trial
    gaps = []
    for start, end in sorted(intervals):
        done = [e for e in ends if e <= start]
        if done and len(ends) >= lanes:  # the slot that freed last before this start
            previous = max(done)
            ends.remove(previous)
            gaps.append(start - previous)
        elif len(ends) >= lanes:  # overlapping more than lanes: counted by max_concurrency
            ends.remove(min(ends))
        ends.append(end)
    return gaps


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process (its threads, not its children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_stages(study_folder: Path) -> list[dict]:
    stages = []
    for result_file in sorted((study_folder / "stages").glob("*/result.json")):
        result = json.loads(result_file.read_text())
        spec = json.loads((result_file.parent / "stage.json").read_text())
        attempts = int((result_file.parent / "attempts").read_text())
        stages.append(
            {
                "start": float(result["started"]),
                "end": float(result["ended"]),
                "device": result["device"],
                "duration": float(spec["overrides"]["fake.duration"]),
                "attempts": attempts,
            }
        )
    return stages


def count_completed(study_folder: Path) -> tuple[int, int]:
    """``(COMPLETE trials, distinct point keys among them)`` in the study's journal."""
    import optuna

    from mats_lab.lab.study import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(f"journal://{study_folder / 'optuna.journal'}")
    study = optuna.load_study(study_name="scheduling-bench", storage=storage)
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return len(done), len({t.user_attrs.get("point_key") for t in done})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", choices=("single", "mixed", "k400"), default="single")
    parser.add_argument("--trials", type=int, help="default 64 (single), 16 (mixed)")
    parser.add_argument("--devices", type=int, default=8, help="simulated GPUs 0..N-1")
    parser.add_argument("--trials-per-device", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the trial lengths")
    parser.add_argument("--mean", type=float, default=6.0, help="mean trial length, seconds")
    parser.add_argument(
        "--spread", type=float, default=2 / 3, help="lengths uniform in mean*(1 +- spread)"
    )
    parser.add_argument("--order", choices=("longest", "random"), default="longest")
    parser.add_argument("--tolerance", type=float, help="default 0.05 (single), 0.10 (mixed)")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--show-log", action="store_true", help="print the sweep's output")
    parser.add_argument(
        "--work", default="pretrain=32,finetune=8", help="k400: device-seconds per stage"
    )
    parser.add_argument("--stage-devices", default="", help="k400: e.g. pretrain=1,finetune=1")
    args = parser.parse_args(argv)
    if args.scenario == "single":
        args.trials = 64 if args.trials is None else args.trials
        args.tolerance = 0.05 if args.tolerance is None else args.tolerance
        return run_single(args)
    args.trials = 16 if args.trials is None else args.trials
    args.tolerance = 0.10 if args.tolerance is None else args.tolerance
    return run_multi(args)


def run_single(args: argparse.Namespace) -> int:
    lengths = draw_lengths(args.trials, args.mean, args.spread, args.seed)
    if args.order == "longest":
        lengths.sort(reverse=True)
    devices = list(range(args.devices))
    slots = args.devices * args.trials_per_device
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True)
        folder = args.keep
    else:
        folder = Path(tempfile.mkdtemp(prefix="mats-sched-"))
    try:
        study = write_study(folder, lengths, devices, args.trials_per_device)
        command = [sys.executable, "-m", "mats_lab.cli.main", "sweep", str(study)]
        command += ["--devices", ",".join(map(str, devices))]
        print(
            f"{args.trials} trials of {min(lengths):.2f}-{max(lengths):.2f} s (mean "
            f"{np.mean(lengths):.2f} s, seed {args.seed}, {args.order} first) on {args.devices} "
            f"simulated GPUs x {args.trials_per_device}; {os.cpu_count()} CPU cores"
        )
        launched = time.time()
        log = open(folder / "sweep.log", "w+")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        cpu = []  # (time, CPU seconds of the sweep process: main loop and MLflow thread)
        while proc.poll() is None:
            cpu.append((time.time(), _cpu_seconds(proc.pid)))
            time.sleep(0.1)
        exited = time.time()
        log.seek(0)
        if args.show_log or proc.returncode != 0:
            print(log.read())
        log.close()
        stages = read_stages(folder / "study")
        completed, distinct = count_completed(folder / "study")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    failures = []
    if proc.returncode != 0:
        failures.append(f"the sweep exited with {proc.returncode}")
    ran = sorted(s["duration"] for s in stages)
    if (
        ran != sorted(lengths)
        or any(s["attempts"] != 1 for s in stages)
        or completed != len(lengths)
        or distinct != len(lengths)
    ):
        failures.append(
            f"grid points: {len(lengths)} queued, {len(stages)} stage results, "
            f"{completed} COMPLETE trials ({distinct} distinct), attempts "
            f"{sorted({s['attempts'] for s in stages})}"
        )
    if not stages:
        print("no stage ran")
        return 1

    trial_time = [s["end"] - s["start"] for s in stages]
    total = sum(trial_time)
    ideal = max(total / slots, max(trial_time))
    first = min(s["start"] for s in stages)
    last = max(s["end"] for s in stages)
    makespan = last - first
    measured = {s["duration"]: s["end"] - s["start"] for s in stages}
    ordered = [measured.get(d, d) for d in lengths]  # the queue order, measured lengths
    bound = list_schedule(ordered, slots)
    per_device: dict[str, list[tuple[float, float]]] = {}
    for s in stages:
        per_device.setdefault(s["device"], []).append((s["start"], s["end"]))
    concurrency = {d: max_concurrency(iv) for d, iv in sorted(per_device.items())}
    gaps = [g for iv in per_device.values() for g in handoff_gaps(iv, args.trials_per_device)]
    idle = slots * makespan - total

    print(f"ideal makespan        {ideal:8.2f} s  (total trial time {total:.1f} s / {slots} slots)")
    print(
        f"list schedule         {bound:8.2f} s  ({bound / ideal:.3f} x ideal: this order, "
        "zero overhead)"
    )
    print(
        f"measured makespan     {makespan:8.2f} s  ({makespan / ideal:.3f} x ideal, "
        f"{makespan / bound:.3f} x list schedule)"
    )
    print(
        f"max trials at once    {max(concurrency.values())} per device "
        f"(allowed {args.trials_per_device}; devices used {len(per_device)})"
    )
    if gaps:
        gaps.sort()
        print(
            f"hand-off per trial    {np.mean(gaps) * 1000:8.0f} ms mean, "
            f"{np.median(gaps) * 1000:.0f} ms median, {gaps[-1] * 1000:.0f} ms max "
            f"(a trial's end to the next start on its slot, {len(gaps)} hand-offs)"
        )
        predicted = list_schedule(ordered, slots, float(np.mean(gaps)))
        print(f"  list schedule with that hand-off: {predicted:.2f} s")
    print(
        f"idle slot time        {idle / len(stages) * 1000:8.0f} ms per trial "
        f"(slots x makespan - trial time, end-game imbalance included)"
    )
    window = [c for t, c in cpu if first <= t <= last and c is not None]
    if len(window) >= 2:
        print(
            f"sweep CPU             {(window[-1] - window[0]) / len(stages) * 1000:8.0f} ms per "
            "trial (the sweep process while trials ran: scheduling loop, Optuna, MLflow thread)"
        )
    print(
        f"sweep wall time       {exited - launched:8.2f} s: start-up to the first trial "
        f"{first - launched:.2f} s, makespan {makespan:.2f} s, last trial end to exit "
        f"{exited - last:.2f} s"
    )

    if max(concurrency.values()) > args.trials_per_device:
        failures.append(f"a device ran more than {args.trials_per_device} trials at once")
    target = ideal if args.order == "longest" else max(ideal, bound)
    if makespan > (1 + args.tolerance) * target:
        what = "ideal" if args.order == "longest" else "zero-overhead list schedule"
        failures.append(
            f"makespan {makespan:.2f} s is more than {args.tolerance:.0%} over the {what} "
            f"{target:.2f} s"
        )
    for failure in failures:
        print(f"FAILED: {failure}")
    if not failures:
        print("OK: every check passed")
    return 1 if failures else 0


# -- stages that span devices -------------------------------------------------------------------
MIXED_SIZES = {"one": 1, "two": 2, "four": 4}
K400 = REPO / "studies" / "gpu" / "keep_ratio_k400.yaml"


def _pairs(text: str) -> dict[str, float]:
    """``"a=1,b=2"`` -> ``{"a": 1.0, "b": 2.0}``."""
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key.strip()] = float(value)
    return out


def write_mixed_study(folder: Path, lengths: list[list[float]], devices: list[int]) -> Path:
    """Trials of three chained stages on 1, 2 and 4 GPUs; ``lengths[t]`` their durations."""
    bundles = [
        {"label": f"t{t:02d}"}
        | {f"fake.duration.{n}": d for n, d in zip(MIXED_SIZES, row, strict=True)}
        for t, row in enumerate(lengths)
    ]
    previous = None
    stages = []
    for name, size in MIXED_SIZES.items():
        stage = {"name": name, "config": str(REPO / CONFIG), "devices": size}
        if previous:
            stage["load_from"] = previous
        stages.append(stage)
        previous = name
    study = {
        "name": "scheduling-bench",
        "stages": stages,
        "space": {"lengths": {"grid": bundles}},
        "resources": {"devices": devices},
        "retries": 0,
        "command": [sys.executable, "-m", "mats_lab.lab.fake_stage"],
        "output": str(folder / "study"),
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def write_k400_study(
    folder: Path, devices: list[int], work: dict[str, float], sizes: dict[str, float]
) -> Path:
    """``keep_ratio_k400.yaml`` with the fake command: each stage ``work / devices`` long."""
    study = yaml.safe_load(K400.read_text())
    for stage in study["stages"]:
        size = int(sizes.get(stage["name"], stage.get("devices", 1)))
        stage["devices"] = size
        stage["config"] = str(REPO / stage["config"])
        overrides = stage.setdefault("overrides", {})
        overrides["fake.duration"] = round(work[stage["name"]] / size, 3)
    study.update(
        name="scheduling-bench",
        resources={"devices": devices},
        command=[sys.executable, "-m", "mats_lab.lab.fake_stage"],
        output=str(folder / "study"),
        retries=0,
    )
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def read_multi(study_folder: Path) -> list[dict]:
    """Every stage run: name, trial, GPUs, ranks, start, end, and the stage dirs it loaded."""
    runs = []
    for result_file in sorted((study_folder / "stages").glob("*/result.json")):
        result = json.loads(result_file.read_text())
        spec = json.loads((result_file.parent / "stage.json").read_text())
        runs.append(
            {
                "dir": str(result_file.parent),
                "stage": spec["stage"],
                "trial": spec["trial"],
                "gpus": [g for g in result["device"].split(",") if g],
                "nprocs": int(result["nprocs"]),
                "asked": int(spec["nprocs"]),
                "start": float(result["started"]),
                "end": float(result["ended"]),
                "load_from": spec.get("load_from") or "",
            }
        )
    return runs


def sim_stages(runs: list[dict], stage_order: list[str]) -> list[SimStage]:
    """The runs as :class:`SimStage` s with measured lengths, in the sweep's priority order
    (trial asked first, then stage order), each after the stage dir its checkpoint came from."""
    runs = sorted(runs, key=lambda r: (r["trial"], stage_order.index(r["stage"])))
    stages = []
    for r in runs:
        after = tuple(
            o["dir"] for o in runs if r["load_from"] and r["load_from"].startswith(o["dir"] + "/")
        )
        stages.append(SimStage(r["dir"], len(r["gpus"]), r["end"] - r["start"], after))
    return stages


def device_failures(runs: list[dict]) -> list[str]:
    """A GPU given to two stages at once, or a stage without as many distinct GPUs as ranks."""
    failures = []
    per_gpu: dict[str, list[tuple[float, float]]] = {}
    for r in runs:
        if not (len(set(r["gpus"])) == len(r["gpus"]) == r["nprocs"] == r["asked"]):
            failures.append(f"{r['dir']}: {r['asked']} ranks asked, GPUs {r['gpus']}")
        for gpu in r["gpus"]:
            per_gpu.setdefault(gpu, []).append((r["start"], r["end"]))
    for gpu, intervals in sorted(per_gpu.items()):
        if max_concurrency(intervals) > 1:
            failures.append(f"GPU {gpu} ran two stages at once")
    return failures


def run_multi(args: argparse.Namespace) -> int:
    devices = list(range(args.devices))
    folder = Path(tempfile.mkdtemp(prefix="mats-sched-")) if not args.keep else args.keep
    if args.keep:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    if args.scenario == "mixed":
        rows = [
            draw_lengths(3, args.mean, args.spread, args.seed * 1000 + t)
            for t in range(args.trials)
        ]
        study = write_mixed_study(folder, rows, devices)
        order = list(MIXED_SIZES)
        print(
            f"{args.trials} trials x 3 chained stages on 1, 2 and 4 of {args.devices} simulated "
            f"GPUs, lengths uniform in {args.mean:g} s x (1 +- {args.spread:.2f}) (seed "
            f"{args.seed}); {os.cpu_count()} CPU cores"
        )
    else:
        sizes = _pairs(args.stage_devices)
        study = write_k400_study(folder, devices, _pairs(args.work), sizes)
        order = [s["name"] for s in yaml.safe_load(study.read_text())["stages"]]
        shown = {s["name"]: s["devices"] for s in yaml.safe_load(study.read_text())["stages"]}
        print(
            f"{K400.relative_to(REPO)} stages on {args.devices} simulated GPUs, devices {shown}, "
            f"work {args.work} device-seconds; {os.cpu_count()} CPU cores"
        )
    command = [sys.executable, "-m", "mats_lab.cli.main", "sweep", str(study)]
    try:
        launched = time.time()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        exited = time.time()
        if args.show_log or proc.returncode != 0:
            print(proc.stdout + proc.stderr)
        runs = read_multi(folder / "study")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    failures = [f"the sweep exited with {proc.returncode}"] if proc.returncode else []
    if not runs:
        print("no stage ran")
        return 1
    failures += device_failures(runs)
    stages = sim_stages(runs, order)
    n = args.devices
    first = min(r["start"] for r in runs)
    makespan = max(r["end"] for r in runs) - first
    bound, _ = packing.list_schedule(stages, n)
    area = area_bound(stages, n)
    busy = utilisation(stages, n, makespan)
    print(
        f"stages run            {len(runs)} ({sum(s.devices * s.length for s in stages):.1f} "
        "GPU-seconds of stage time)"
    )
    print(f"measured makespan     {makespan:8.2f} s  GPU utilisation {busy:6.1%}")
    print(
        f"list schedule         {bound:8.2f} s  GPU utilisation "
        f"{utilisation(stages, n, bound):6.1%}  (the sweep's packing rule, zero overhead; "
        f"measured = {makespan / bound:.3f} x)"
    )
    if len(stages) <= 9:
        best = best_makespan(stages, n)
        print(
            f"best possible         {best:8.2f} s  GPU utilisation "
            f"{utilisation(stages, n, best):6.1%}  (any schedule of this dependency graph)"
        )
    print(f"lower bound           {area:8.2f} s  (GPU-seconds / GPUs, or the longest chain)")
    events = sorted(
        [(r["start"], len(r["gpus"])) for r in runs] + [(r["end"], -len(r["gpus"])) for r in runs]
    )
    now = peak = 0
    for _, step in events:  # an end sorts before a start at the same instant
        now += step
        peak = max(peak, now)
    print(f"most GPUs busy        {peak:8d} of {n} at once")
    gaps = []
    for r in runs:
        previous = [
            o["end"] for o in runs if o["end"] <= r["start"] and set(o["gpus"]) & set(r["gpus"])
        ]
        if previous:
            gaps.append(r["start"] - max(previous))
    if gaps:
        print(
            f"hand-off per stage    {np.mean(gaps) * 1000:8.0f} ms mean, {max(gaps) * 1000:.0f} "
            "ms max (a stage's start after the last stage on its GPUs ended)"
        )
    print(f"sweep wall time       {exited - launched:8.2f} s (start-up {first - launched:.2f} s)")
    if args.scenario == "mixed" and makespan > (1 + args.tolerance) * bound:
        failures.append(
            f"makespan {makespan:.2f} s is more than {args.tolerance:.0%} over the "
            f"zero-overhead list schedule {bound:.2f} s"
        )
    for failure in failures:
        print(f"FAILED: {failure}")
    if not failures:
        print("OK: every check passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
