"""How long ``mats-lab report`` takes on a large study: 1,000 tracked trials by default.

Builds a synthetic study store the way a sweep leaves it (no training, nothing run): a study
file ``studies/bench.yaml`` under a scratch folder, its Optuna journal (trials written with
``optuna.trial.create_trial`` / ``Study.add_trials``: per-epoch history, costs, stages, a few
failed, pruned, running and waiting trials) and its MLflow database (a parent run and one
child run per finished trial, logged by the sweep's own :func:`mats_lab.lab.tracking.sync_trial`).
The grid is method (VideoMAE, MATS at 9 keep ratios) x frame budget (4) x candidate ratio (5),
200 configurations x 5 seeds. Generating takes a while (MLflow writes each run); only the report
is timed, in a fresh interpreter, as a user runs it::

    mats-lab report <scratch>/studies/bench.yaml --out <scratch>/reports --no-tokens

and the benchmark prints the seconds (from the run's start to its end, interpreter start
included) and exits 1 when they exceed ``--limit`` (10 s).

    python benchmarks/report_speed.py                    # 1,000 trials
    python benchmarks/report_speed.py --trials 200 --keep /tmp/bench-report
    python benchmarks/report_speed.py --offline          # time the Optuna-only path too
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
NAME = "bench"
KEEP = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
BUDGETS = [4, 8, 16, 32]
CANDIDATES = [1.0, 1.5, 2.0, 2.5, 3.0]
EPOCHS = 24


def study_data() -> dict:
    methods = [{"label": "videomae", "recipe": "videomae", "keep_ratio": 1.0}]
    methods += [{"label": f"mats-{k}", "recipe": "mats", "keep_ratio": k} for k in KEEP]
    return {
        "name": NAME,
        "description": "synthetic store for benchmarks/report_speed.py",
        "stages": [
            {
                "name": "pretrain",
                "config": "mm_configs/{recipe}_vit-tiny-p8_pretrain_8x4x1_motion-synth.py",
            },
            {
                "name": "finetune",
                "config": "mm_configs/{recipe}_vit-tiny-p8_finetune_8x4x1_motion-synth.py",
                "load_from": "pretrain",
                "test": True,
            },
        ],
        "space": {
            "method": {"stages": ["finetune"], "grid": methods},
            "frame_budget": {"grid": BUDGETS},
            "candidate_ratio": {"grid": CANDIDATES},
        },
        "seeds": [0, 1, 2, 3, 4],
        "objectives": [{"metric": "val/acc/top1", "direction": "maximize"}],
        "sampler": {"type": "grid"},
    }


def _metrics(method: dict, budget: int, alpha: float, rng: np.random.Generator) -> dict:
    keep = float(method["keep_ratio"])
    mats = method["recipe"] == "mats"
    top1 = (
        0.55 + 0.12 * keep + 0.03 * np.log2(budget / 4) + 0.01 * (alpha - 1) + (0.02 if mats else 0)
    )
    top1 = float(np.clip(top1 + rng.normal(0, 0.01), 0, 1))
    pre = (0.7 if mats else 1.2) * budget / 8
    fine = (0.15 + 0.85 * keep) * budget / 8 * (1 + 0.05 * (alpha - 1))
    wall = 60 * pre + 40 * fine + float(rng.uniform(0, 5))
    return {
        "pretrain/train_gmacs": pre,
        "pretrain/test_gmacs": pre,
        "finetune/train_gmacs": fine,
        "finetune/test_gmacs": fine,
        "val/acc/top1": top1,
        "val/acc/top5": min(1.0, top1 + 0.25),
        "test/acc/top1": float(np.clip(top1 + rng.normal(0, 0.005), 0, 1)),
        "test/acc/top5": min(1.0, top1 + 0.26),
        "train_gmacs": fine,
        "test_gmacs": fine,
        "params_m": 5.5,
        "throughput": 400 / fine,
        "peak_memory_mb": 300 + 500 * fine,
        "wall_time_s": wall,
    }


def _history(final: dict, epochs: int, rng: np.random.Generator) -> dict:
    steps = list(range(2, epochs + 1, 2))
    top1, top5 = final["val/acc/top1"], final["val/acc/top5"]
    noise = rng.normal(0, 0.005, len(steps))
    return {
        "val/acc/top1": [
            [e, top1 * (e / epochs) ** 0.5 + (n if e < epochs else 0)]
            for e, n in zip(steps, noise, strict=True)
        ],
        "val/acc/top5": [[e, top5 * (e / epochs) ** 0.3] for e in steps],
        "finetune/train/loss": [[e, 2.1 * np.exp(-e / 10) + 0.3] for e in range(1, epochs + 1)],
        "pretrain/train/loss": [[e, 1.0 - 0.1 * e] for e in range(1, 4)],
    }


def build_store(root: Path, trials: int = 1000, seed: int = 0) -> Path:
    """Write ``root/studies/bench.yaml`` and its stores; returns the study file."""
    from mlflow.tracking import MlflowClient
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from mats_lab.lab.records import trial_record
    from mats_lab.lab.study import open_storage, open_study
    from mats_lab.lab.tracking import STUDY_TAG, SWEEP_TAG
    from mats_lab.protocol.layout import default_storage, default_tracking
    from mats_lab.protocol.spec import load_study, study_paths

    data = study_data()
    path = root / "studies" / f"{NAME}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    spec = load_study(path)
    folder, _ = study_paths(spec, path)
    study = open_study(spec, open_storage(default_storage(folder)), fresh=True)
    methods = data["space"]["method"]["grid"]
    dists = {
        "method": CategoricalDistribution([m["label"] for m in methods]),
        "frame_budget": CategoricalDistribution(BUDGETS),
        "candidate_ratio": CategoricalDistribution(CANDIDATES),
    }
    rng = np.random.default_rng(seed)
    grid = itertools.product(methods, BUDGETS, CANDIDATES, data["seeds"])
    frozen = []
    for number, (method, budget, alpha, s) in zip(
        range(trials), itertools.cycle(grid), strict=False
    ):
        params = {"method": method["label"], "frame_budget": budget, "candidate_ratio": alpha}
        variables = {k: v for k, v in method.items() if k != "label"}
        variables |= {"frame_budget": budget, "candidate_ratio": alpha}
        metrics = _metrics(method, budget, alpha, rng)
        history = _history(metrics, EPOCHS, rng)
        roll = rng.uniform()
        state = TrialState.COMPLETE
        attrs = {"point_key": f"p{number:05d}", "seed": s, "variables": variables, "sweep": "bench"}
        if number >= trials - 2:
            state, metrics, history = TrialState.WAITING, {}, {}
            attrs = {"point_key": attrs["point_key"], "seed": s}
        elif number >= trials - 5:
            state, metrics, history = TrialState.RUNNING, {}, {}
        elif roll < 0.02:
            state = TrialState.FAIL
            metrics = {k: v for k, v in metrics.items() if k.startswith("pretrain/")}
            history = {"pretrain/train/loss": history["pretrain/train/loss"]}
            attrs |= {
                "failure": "crash",
                "error": "stage finetune exited with 1",
                "log_tail": "RuntimeError: CUDA out of memory (synthetic)",
            }
        elif roll < 0.045:
            state = TrialState.PRUNED
            history = {k: v[: len(v) // 3] for k, v in history.items()}
            metrics = {k: v for k, v in metrics.items() if "/acc/" not in k}
        key = f"{NAME}-{number:05d}"
        attrs |= {
            "metrics": metrics,
            "history": history,
            "stages": [
                {
                    "name": n,
                    "key": f"{n}-{key}",
                    "work_dir": str(folder / "stages" / f"{n}-{key}"),
                    "config_hash": "synthetic",
                    "reused": False,
                    "resumed_from": None,
                }
                for n in ("pretrain", "finetune")
            ]
            if metrics
            else [],
        }
        values = [metrics["val/acc/top1"]] if state == TrialState.COMPLETE else None
        intermediate = {int(e): float(v) for e, v in history.get("val/acc/top1", [])}
        frozen.append(
            create_trial(
                state=state,
                params=params if state != TrialState.WAITING else None,
                distributions=dists if state != TrialState.WAITING else None,
                values=values,
                user_attrs=attrs,
                intermediate_values=intermediate if state == TrialState.PRUNED else None,
            )
        )
    study.add_trials(frozen)
    client = MlflowClient(tracking_uri=default_tracking(folder))
    experiment = client.create_experiment(NAME, artifact_location=(folder / "artifacts").as_uri())
    tags = {STUDY_TAG: NAME, SWEEP_TAG: "bench"}
    parent = client.create_run(experiment, run_name="sweep-bench", tags=tags).info.run_id
    for trial in study.get_trials(deepcopy=False):
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
            log_run(client, experiment, trial_record(trial, "bench"), parent)
    client.set_terminated(parent, status="FINISHED")
    return path


def log_run(client: object, experiment: str, record: dict, parent: str) -> None:
    """One trial's child run, as :func:`mats_lab.lab.tracking.sync_trial` logs it, in fewer
    database transactions (no look-up of an earlier run, one batch of metrics)."""
    from mlflow.entities import Metric, Param

    from mats_lab.lab.tracking import trial_run_tags

    tags = trial_run_tags(NAME, record["number"], record["sweep"]) | record["tags"]
    tags |= {"mlflow.parentRunId": parent, "mats_lab.synced": "1"}
    run_id = client.create_run(experiment, run_name=record["name"], tags=tags).info.run_id
    stamp = int(record["end_time"] * 1000)
    metrics = [
        Metric(name, float(v), stamp, int(step))
        for name, points in record["history"].items()
        for step, v in points
    ]
    metrics += [
        Metric(name, float(v), stamp, 0)
        for name, v in record["metrics"].items()
        if name not in record["history"]
    ]
    params = [Param(k, str(v)) for k, v in record["params"].items()]
    client.log_batch(run_id, metrics=metrics, params=params)
    status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(record["state"], "FAILED")
    client.set_terminated(run_id, status=status, end_time=stamp or None)


def time_report(study: Path, out: Path, offline: bool) -> tuple[float, float, str]:
    """``(wall seconds, CPU seconds, output)`` of one ``mats-lab report`` in a fresh process."""
    import resource

    argv = [sys.executable, "-m", "mats_lab.cli.main", "report", str(study)]
    argv += ["--out", str(out), "--no-tokens"] + (["--offline"] if offline else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)  # noqa: S603
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"mats-lab report failed ({done.returncode}):\n{done.stderr}")
    return wall, cpu, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="build the store here and keep it")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (the best counts)")
    parser.add_argument("--limit", type=float, default=10.0, help="seconds allowed")
    parser.add_argument("--offline", action="store_true", help="also time --offline")
    args = parser.parse_args(argv)
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="report_speed_"))
    try:
        study = scratch / "studies" / f"{NAME}.yaml"
        journal = scratch / "studies" / "runs" / NAME / "optuna.journal"
        if not journal.is_file():
            start = time.perf_counter()
            build_store(scratch, args.trials)
            print(f"store of {args.trials} trials built in {time.perf_counter() - start:.0f} s")
        out = scratch / "reports"
        modes = [False, True] if args.offline else [False]
        worst = 0.0
        for offline in modes:
            runs = [time_report(study, out, offline) for _ in range(args.repeats)]
            best = min(runs)
            worst = max(worst, best[0]) if not offline else worst
            label = "Optuna storage only (--offline)" if offline else "MLflow + Optuna"
            walls = ", ".join(f"{w:.2f}" for w, _, _ in runs)
            print(
                f"report over {args.trials} trials, {label}: {best[0]:.2f} s "
                f"(runs: {walls} s; CPU {best[1]:.2f} s; load average {os.getloadavg()[0]:.1f})"
            )
        table = (out / NAME / "results.md").read_text().splitlines()
        rows = len(table) - 2
        figures = sorted(p.name for p in (out / NAME).glob("*.png"))
        print(f"{rows} configurations in the table; figures: {', '.join(figures)}; in {out / NAME}")
        if worst > args.limit:
            print(f"FAIL: {worst:.2f} s > {args.limit:.0f} s")
            return 1
        print(f"ok: under {args.limit:.0f} s")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
