"""The GPU check: ``python -m mats_lab.trial.bench.gpu_check --out DIR`` (gpu_check.sh).

On one GPU, in a few minutes, it shows that the GPU path runs end to end and what it buys:

1. a 2-trial tiny sweep (``keep_ratio`` 0.6 vs 1.0, bf16) through ``mats-lab sweep``, the real
   stage runner and the device pool, on CUDA; every stage must finish with a ``result.json``;
2. ViT-B/16 at 16x224x224, bf16 autocast: MATS vs VideoMAE pre-training steps and MATS vs
   full-token fine-tuning steps (``mats-lab bench --model base --device cuda --amp``): clips/s,
   peak memory, time ratios next to the MAC ratios.

It prints the bench's table and one summary table, and writes ``DIR/gpu_check.json``. Exit
status 0 when every part ran, 1 otherwise (the summary says which part failed).

``--cpu-dry-run`` runs the same code paths on the CPU with the tiny bench model, so CI proves
the script itself without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
TINY_FINETUNE = REPO / "mm_configs" / "mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"


def tiny_data(root: Path) -> dict[str, Any]:
    """Dotted overrides that point every dataloader of a tiny config at the ``tiny`` preset of
    the embedded dataset in ``root`` (built on first use), 4 clips a batch, in the process."""
    options: dict[str, Any] = {}
    for split in ("train", "val", "test"):
        key = f"{split}_dataloader"
        options |= {
            f"{key}.dataset.synth_root": str(root),
            f"{key}.dataset.synth_size": "tiny",
            f"{key}.dataset.ann_file": str(root / f"{split}_list_videos.txt"),
            f"{key}.dataset.data_prefix.video": str(root),
            f"{key}.batch_size": 4,
            f"{key}.num_workers": 0,
            f"{key}.persistent_workers": False,
        }
    return options


def write_study(out: Path, cuda: bool) -> Path:
    """A 2-trial study: tiny MATS fine-tuning at keep 0.6 and 1.0, bf16, 2 epochs. The CPU
    dry run trains 1 epoch in fp32: bf16 autocast on a CPU without native bf16 took 2 s a
    4-clip step (the bf16 training step on the CPU is tests/test_precision.py's to check);
    what the dry run proves is the sweep, the records and the tables."""
    knobs = {"epochs": 2, "precision": "bf16"} if cuda else {"epochs": 1, "precision": "fp32"}
    study = {
        "name": "gpu_check",
        "stages": [
            {
                "name": "finetune",
                "config": str(TINY_FINETUNE),
                "test": True,
                "knobs": knobs,
                "overrides": {**tiny_data(out / "data"), "train_cfg.val_interval": 1},
            }
        ],
        "space": {"keep_ratio": {"grid": [0.6, 1.0]}},
        "resources": {"devices": [0] if cuda else 1},
        "output": str(out / "study"),
    }
    path = out / "gpu_check_study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def run_sweep(out: Path, cuda: bool, timeout: float | None) -> dict[str, Any]:
    """Run the 2-trial sweep (``timeout`` seconds at most, ``None``: no limit); returns what
    each finished stage reported."""
    study = write_study(out, cuda)
    log = out / "sweep.log"
    start = time.time()
    with log.open("w") as handle:
        try:
            code = subprocess.run(  # noqa: S603 - an argument list, no shell
                [sys.executable, "-m", "mats_lab.cli.main", "sweep", str(study)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                timeout=timeout,
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    stages = []
    for result in sorted((out / "study").glob("stages/*/result.json")):
        record = json.loads(result.read_text())
        cost = record.get("cost") or {}
        stages.append(
            {
                "stage": result.parent.name,
                "keep_ratio_keys": record.get("knobs", {}).get("keep_ratio"),
                "device": record.get("device"),
                "nprocs": record.get("nprocs"),
                "val": record.get("val"),
                "train_gmacs": cost.get("train_gmacs"),
                "throughput": cost.get("throughput"),
                "peak_memory_mb": cost.get("peak_memory_mb"),
            }
        )
    ok = code == 0 and len(stages) == 2
    if cuda:  # the pool gave each stage a GPU (CUDA_VISIBLE_DEVICES, recorded as device)
        ok = ok and all(stage["device"] not in (None, "") for stage in stages)
    tail = "" if ok else "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    return {
        "ok": ok,
        "exit": code,
        "seconds": round(time.time() - start, 1),
        "stages": stages,
        "log": str(log),
        "log_tail": tail,
    }


def run_steps(cuda: bool, repeats: int) -> tuple[dict[str, Any], str]:
    """The ViT-B (tiny on the CPU dry run) bench pairs in bf16; ``(figures, table)``."""
    from mats_lab.trial.bench import BenchSpec, format_result, run_bench

    # The CPU dry run proves code paths, not speed: bf16 autocast on a CPU without native
    # bf16 took 8 s a tiny fine-tuning step of 16 clips (AMD EPYC, 2026-12-03), so it steps
    # 2 clips, once untimed.
    spec = BenchSpec(
        model="base" if cuda else "tiny",
        device="cuda" if cuda else "cpu",
        batch=None if cuda else 2,
        warmup=2 if cuda else 1,
        repeats=repeats,
        amp=True,
        threads=None if cuda else 1,
        pairs=("pretrain", "finetune"),
    )
    # the CPU's peak memory in fresh processes is tests/test_bench.py's to check; here it
    # would only add four interpreter starts
    result = run_bench(spec, memory=cuda, progress=lambda line: print(line, flush=True))
    table = format_result(result)
    if not cuda:
        table = (
            "CPU dry run: 2-clip batches, so the figures and the PASS/FAIL checks below say "
            "nothing about speed or memory\n" + table
        )
    return result.as_dict(), table


def summary_table(report: dict[str, Any]) -> str:
    """One table: the sweep's stages, then the bench's ratios."""
    lines = [f"GPU check on {report['device']} (load {report['load']}):", ""]
    sweep = report["sweep"]
    lines.append(f"sweep: {'ok' if sweep['ok'] else 'FAILED'} ({sweep['seconds']} s)")
    lines.append(f"  {'stage':<34} {'device':>6} {'top1':>6} {'GMACs':>8} {'clips/s':>8}")
    for stage in sweep["stages"]:
        top1 = (stage["val"] or {}).get("acc/top1")
        lines.append(
            f"  {stage['stage']:<34} {stage['device'] or '-':>6} "
            f"{_num(top1, '.3f'):>6} {_num(stage['train_gmacs'], '.4f'):>8} "
            f"{_num(stage['throughput'], '.1f'):>8}"
        )
    steps = report.get("steps")
    if steps is not None:
        lines += ["", "steps (bf16): MATS / baseline"]
        lines.append(f"  {'pair':<10} {'time':>6} {'MACs':>6} {'memory':>7}")
        for pair in ("pretrain", "finetune"):
            lines.append(
                f"  {pair:<10} {_num(steps.get(f'{pair}_time_ratio'), '.3f'):>6} "
                f"{_num(steps.get(f'{pair}_macs_ratio'), '.3f'):>6} "
                f"{_num(steps.get(f'{pair}_memory_ratio'), '.3f'):>7}"
            )
        lines.append(f"  {'workload':<18} {'clips/s':>8} {'peak MiB':>9}")
        for name, fig in (steps.get("workloads") or {}).items():
            lines.append(
                f"  {name:<18} {_num(fig.get('clips_per_s'), '.2f'):>8} "
                f"{_num((fig.get('memory_mb') or {}).get('peak'), '.0f'):>9}"
            )
    else:
        lines.append(f"steps: FAILED ({report.get('steps_error')})")
    return "\n".join(lines)


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the study and JSON")
    parser.add_argument("--cpu-dry-run", action="store_true", help="tiny, on the CPU (CI)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per workload")
    parser.add_argument(
        "--sweep-timeout",
        type=float,
        default=None,
        help="seconds (default: 240 on the GPU; none on the CPU dry run, whose time follows the "
        "machine's load)",
    )
    args = parser.parse_args(argv)

    import torch

    cuda = not args.cpu_dry_run
    if cuda and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device (use --cpu-dry-run on a CPU)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu (dry run)",
        "torch": torch.__version__,
        "load": [round(x, 2) for x in os.getloadavg()],
    }
    print("gpu_check: 2-trial sweep through the stage runner", flush=True)
    sweep_timeout = (
        args.sweep_timeout if args.sweep_timeout is not None else (240.0 if cuda else None)
    )
    report["sweep"] = run_sweep(args.out, cuda, sweep_timeout)
    table = ""
    try:
        report["steps"], table = run_steps(cuda, args.repeats)
    except (RuntimeError, ValueError) as err:  # e.g. out of memory: report it, keep the sweep
        report["steps"] = None
        report["steps_error"] = str(err)
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if table:
        print(table)
    print(summary_table(report))
    if report["sweep"]["log_tail"]:
        print("sweep log tail:\n" + report["sweep"]["log_tail"])
    path = args.out / "gpu_check.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return 0 if report["sweep"]["ok"] and report["steps"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
