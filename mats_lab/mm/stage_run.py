"""Run one stage of a sweep trial: ``python -m mats_lab.mm.stage_run --spec STAGE.json``.

The sweep (``mats_lab.lab``) never imports torch or mmengine; it writes a stage spec and runs
this module as a subprocess on one device slot. Here the config is loaded, the study's
overrides and knobs applied (unknown keys are errors), the work dir, seed, checkpoint to load
and progress hook set, and the result dumped to ``<work_dir>/config.py``: a self-contained
config that plain ``tools/train.py`` runs again. Then it trains exactly as ``tools/train.py``
does (``Runner.from_cfg(cfg).train()``), resuming from ``last_checkpoint`` when the work dir
has one, optionally tests, and writes ``<work_dir>/result.json`` with the metrics and the cost.

Stage spec (JSON)::

    {"config": "/abs/mm_configs/x.py", "overrides": {"a.b": 1}, "knobs": {"keep_ratio": 0.3},
     "strict": ["keep_ratio"], "seed": 0, "work_dir": "/abs/stages/finetune-1a2b",
     "load_from": "/abs/stages/pretrain-3c4d/epoch_10.pth" | null, "test": true,
     "resolve_only": false}

Exit status: 0 when done, 3 when the config cannot be built (the message names the key), other
non-zero values when training failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from mats_lab.mm import compat

compat.apply()

from mmengine.config import Config  # noqa: E402

from mats_lab.mm import progress_hook  # noqa: E402,F401  (registers TrialProgressHook)
from mats_lab.mm.configs import UnknownConfigKey, load_config  # noqa: E402
from mats_lab.mm.knobs import KnobError, apply_knobs  # noqa: E402

CONFIG_ERROR = 3


def resolve(spec: dict) -> tuple[Config, dict]:
    """The stage's config with everything applied, and what each knob changed."""
    cfg = load_config(spec["config"], spec.get("overrides") or {})
    applied = apply_knobs(cfg, spec.get("knobs") or {}, spec.get("strict") or [])
    cfg.work_dir = spec["work_dir"]
    cfg.randomness = dict(cfg.get("randomness") or {}, seed=int(spec.get("seed", 0)))
    if spec.get("load_from"):
        cfg.load_from = spec["load_from"]
    hooks = [h for h in cfg.get("custom_hooks") or [] if h.get("type") != "TrialProgressHook"]
    cfg.custom_hooks = [*hooks, dict(type="TrialProgressHook", interval=5)]
    return cfg, applied


def config_hash(cfg: Config) -> str:
    """Hash of the resolved config without its work dir: equal hashes train the same thing."""
    text = Config(cfg.to_dict() | {"work_dir": ""}).pretty_text
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _last_checkpoint(work_dir: Path) -> str | None:
    marker = work_dir / "last_checkpoint"
    if marker.is_file():
        path = marker.read_text().strip()
        if path and Path(path).is_file():
            return path
    return None


def _twin_link(work_dir: Path, digest: str) -> Path:
    return work_dir.parent / "by-config" / digest


def _completed_twin(work_dir: Path, digest: str) -> Path | None:
    """Another stage dir that finished training the identical resolved config, if any."""
    link = _twin_link(work_dir, digest)
    if not link.is_symlink():
        return None
    target = link.resolve()
    if target == work_dir.resolve() or not (target / "result.json").is_file():
        return None
    return target


def _register_twin(work_dir: Path, digest: str) -> None:
    """Point ``by-config/<hash>`` at this finished stage (atomically)."""
    link = _twin_link(work_dir, digest)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(work_dir.resolve(), tmp)
    os.replace(tmp, link)


def _peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    # ru_maxrss is in KiB on Linux: the process's peak resident set (dataloader workers apart).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _progress(work_dir: Path) -> list[dict]:
    path = work_dir / "progress.jsonl"
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    return lines


def _cost(runner: Any) -> dict:
    import torch

    from mats_lab.mm.flops import model_cost

    model = getattr(runner.model, "module", runner.model)
    try:
        with torch.random.fork_rng(devices=[]):
            cost = model_cost(model)
    except TypeError:  # not a MATS/VideoMAE ViT: count nothing rather than fail the trial
        return {"params_m": sum(p.numel() for p in model.parameters()) / 1e6}
    return {
        "train_gmacs": cost.train_gmacs,
        "test_gmacs": cost.test_gmacs,
        "params_m": cost.params_m,
    }


def run(spec: dict) -> dict:
    """Resolve, dump, train (resuming), test; returns what goes into ``result.json``."""
    from mmengine.runner import Runner

    work_dir = Path(spec["work_dir"])
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg, applied = resolve(spec)
    dumped = work_dir / "config.py"
    cfg.dump(str(dumped))
    info = {"config_hash": config_hash(cfg), "knobs": applied, "config": str(dumped)}
    (work_dir / "resolved.json").write_text(json.dumps(info, indent=1))
    if spec.get("resolve_only"):
        return info
    same = _completed_twin(work_dir, info["config_hash"])
    if same is not None:
        print(f"mats-lab: same resolved config already trained in {same}; reusing it", flush=True)
        twin = json.loads((same / "result.json").read_text())
        return twin | info | {"reused_from": str(same)}
    resume_from = _last_checkpoint(work_dir)
    if resume_from:
        # MMEngine resumes from ``load_from`` when it is set: point it at this stage's own
        # checkpoint, not at the earlier stage's weights it started from.
        cfg.resume = True
        cfg.load_from = resume_from
        print(f"mats-lab: resuming from checkpoint {resume_from}", flush=True)
    threads = spec.get("cpu_threads")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    start = time.time()
    runner = Runner.from_cfg(cfg)
    cost = _cost(runner)
    train_start = time.time()
    runner.train()
    train_time = time.time() - train_start
    test_metrics: dict = {}
    if spec.get("test") and cfg.get("test_dataloader") is not None:
        test_metrics = {k: _number(v) for k, v in runner.test().items()}
    lines = _progress(work_dir)
    samples = _samples(lines)
    vals = [line for line in lines if line.get("kind") == "val"]
    history: dict[int, dict] = {int(v["epoch"]): v["metrics"] for v in vals}
    last_val = history[max(history)] if history else {}
    cost.update(
        peak_memory_mb=_peak_memory_mb(),
        throughput=samples / train_time if train_time > 0 and samples > 0 else None,
        wall_time_s=time.time() - start,
    )
    return info | {
        "status": "ok",
        "val": last_val,
        "val_history": [{"epoch": e, **history[e]} for e in sorted(history)],
        "test": test_metrics,
        "cost": cost,
        "checkpoint": _last_checkpoint(work_dir),
        "resumed_from": resume_from,
    }


def _samples(lines: list[dict]) -> int:
    # The hook counts from 0 in each process: the last train line is this process's count.
    train = [line for line in lines if line.get("kind") == "train"]
    return int(train[-1].get("samples", 0)) if train else 0


def _number(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="the stage spec JSON file")
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.spec).read_text())
    try:
        result = run(spec)
    except (UnknownConfigKey, KnobError, FileNotFoundError) as exc:
        print(f"mats-lab: stage config error: {exc}", file=sys.stderr, flush=True)
        return CONFIG_ERROR
    out = Path(spec["work_dir"]) / "result.json"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    os.replace(tmp, out)
    if result.get("status") == "ok" and not result.get("reused_from"):
        _register_twin(Path(spec["work_dir"]), result["config_hash"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
