"""Run one stage of a sweep trial: ``python -m mats_lab.trial.stage_run --spec STAGE.json``.

The sweep (``mats_lab.lab``) never imports torch or mmengine; it writes a stage spec and runs
this module as a subprocess on one device slot. Here the config is loaded, the study's
overrides and knobs applied (unknown keys are errors), the work dir, seed, checkpoint to load
and progress hook set, and the result dumped to ``<work_dir>/config.py``: a self-contained
config that plain ``tools/train.py`` runs again. Then it trains exactly as ``tools/train.py``
does (``Runner.from_cfg(cfg).train()``), resuming from ``last_checkpoint`` when the work dir
has one, optionally tests, and writes ``<work_dir>/result.json`` with the metrics and the cost.

A stage with ``nprocs > 1`` runs one rank per device under torch's own launcher
(:mod:`mats_lab.trial.distributed`): this process checks the config, then runs
``torch.distributed.run``, which starts this module again once per rank. Every rank trains
(and resumes from the same ``last_checkpoint``); rank 0 alone writes ``config.py``,
``resolved.json``, ``result.json`` and the by-config link, and checks after training that all
ranks hold identical weights (``ranks.json``).

On CUDA the runner turns on TF32 matmuls and ``cudnn.benchmark``.

The stage spec and result are the records of :mod:`mats_lab.protocol.records`; the exit status
is one of :mod:`mats_lab.protocol.exits`: 0 when done, ``CONFIG_ERROR`` (3) when the config
cannot be built (the message names the key), other non-zero values when training failed.
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
from torch.distributed.elastic.multiprocessing.errors import record  # noqa: E402

from mats_lab.mm import progress_hook  # noqa: E402,F401  (registers TrialProgressHook)
from mats_lab.protocol.exits import CONFIG_ERROR  # noqa: E402
from mats_lab.protocol.layout import StageFiles  # noqa: E402
from mats_lab.protocol.records import (  # noqa: E402
    RecordError,
    StageResult,
    StageSpec,
    TrainLine,
    ValLine,
    read_progress_lines,
    read_result,
    read_stage_spec,
    write_result,
)
from mats_lab.trial.configs import UnknownConfigKey, load_config  # noqa: E402
from mats_lab.trial.distributed import (  # noqa: E402
    RankInfo,
    init_rank,
    launch,
    parameter_digest,
    rank_config,
    rank_info,
)
from mats_lab.trial.knobs import KnobError, apply_knobs  # noqa: E402
from mats_lab.trial.lr import lr_summary  # noqa: E402
from mats_lab.trial.machine import machine_label  # noqa: E402


def resolve(spec: StageSpec) -> tuple[Config, dict]:
    """The stage's config with everything applied, and what each knob changed."""
    cfg = load_config(spec.config, spec.overrides)
    applied = apply_knobs(cfg, spec.knobs, spec.strict)
    cfg.work_dir = spec.work_dir
    cfg.randomness = dict(cfg.get("randomness") or {}, seed=int(spec.seed))
    if spec.load_from:
        cfg.load_from = spec.load_from
    hooks = [h for h in cfg.get("custom_hooks") or [] if h.get("type") != "TrialProgressHook"]
    cfg.custom_hooks = [*hooks, dict(type="TrialProgressHook", interval=5)]
    if spec.nprocs > 1:
        import torch

        rank_config(cfg, cuda=torch.cuda.is_available())
    return cfg, applied


def config_hash(cfg: Config) -> str:
    """Hash of the resolved config without its work dir: equal hashes train the same thing."""
    text = Config(cfg.to_dict() | {"work_dir": ""}).pretty_text
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def _cost(runner: Any) -> dict:
    import torch

    from mats_lab.trial.flops import model_cost

    model = getattr(runner.model, "module", runner.model)
    device = next(model.parameters()).device
    # The count runs the model once: keep its draws (drop path, masks) out of every RNG.
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            cost = model_cost(model)
    except TypeError:  # not a MATS/VideoMAE ViT: count nothing rather than fail the trial
        return {"params_m": sum(p.numel() for p in model.parameters()) / 1e6}
    return {
        "train_gmacs": cost.train_gmacs,
        "test_gmacs": cost.test_gmacs,
        "params_m": cost.params_m,
    }


def share_batches_through_files() -> None:
    """Hand DataLoader batches from the workers through named shared-memory files
    (``file_system``) instead of torch's default, one file descriptor passed per tensor: a
    tiny config's batch is 32 tensors (16 clips, 16 labels), and the training loop waited 20-21
    ms an iteration for them against 11 ms this way (benchmarks/README.md). torch's
    ``torch_shm_manager`` unlinks the files; it runs in a process group of its own, so a
    SIGKILL of the stage's group leaves nothing in ``/dev/shm`` (checked: it cleaned up within
    seconds)."""
    import torch.multiprocessing

    torch.multiprocessing.set_sharing_strategy("file_system")


def run(spec: StageSpec) -> StageResult | None:
    """Resolve, dump, train (resuming), test; returns the stage's result (None when the spec
    only asks to resolve, and on every rank but 0 of a distributed stage)."""
    import torch
    from mmengine.runner import Runner

    rank = rank_info() if spec.nprocs > 1 else None
    if rank is not None and rank.world_size != spec.nprocs:
        raise RuntimeError(
            f"stage asks for {spec.nprocs} ranks, launcher started {rank.world_size}"
        )
    main_rank = rank is None or rank.is_main
    work_dir = Path(spec.work_dir)
    files = StageFiles(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg, applied = resolve(spec)
    digest = config_hash(cfg)
    info: dict[str, Any] = {
        "config_hash": digest,
        "knobs": applied,
        "config": str(files.config),
        "nprocs": spec.nprocs,
        "lr": lr_summary(cfg, spec.nprocs),
    }
    if main_rank:
        cfg.dump(str(files.config))
        files.resolved.write_text(json.dumps(info, indent=1))
    if spec.resolve_only:
        return None
    info.pop("nprocs")
    info.pop("lr")
    same = _completed_twin(work_dir, digest)
    if same is not None:
        twin = read_result(same)
        if twin is not None:
            print(f"mats-lab: same resolved config already trained in {same}; reusing it")
            return twin.model_copy(update=info | {"reused_from": str(same)}) if main_rank else None
    resume_from = files.checkpoint()
    if resume_from:
        # MMEngine resumes from ``load_from`` when it is set: point it at this stage's own
        # checkpoint, not at the earlier stage's weights it started from.
        cfg.resume = True
        cfg.load_from = resume_from
        where = f"rank {rank.rank}/{rank.world_size}: " if rank is not None else ""
        print(f"mats-lab: {where}resuming from checkpoint {resume_from}", flush=True)
    if spec.cpu_threads:
        torch.set_num_threads(int(spec.cpu_threads))
    share_batches_through_files()
    if torch.cuda.is_available():
        _fast_cuda(cfg)
    if rank is not None:
        init_rank(rank)
    start = time.time()
    runner = Runner.from_cfg(cfg)
    cost = _cost(runner) if main_rank else {}
    train_start = time.time()
    runner.train()
    train_time = time.time() - train_start
    if rank is not None:
        _check_ranks_agree(runner, rank, files)
    test_metrics: dict = {}
    if spec.test and cfg.get("test_dataloader") is not None:
        test_metrics = {k: _number(v) for k, v in runner.test().items()}
    if not main_rank:
        return None
    lines = read_progress_lines(files.progress)
    samples = _samples(lines) * spec.nprocs  # rank 0's clips, times the ranks (equal batches)
    history: dict[int, dict] = {v.epoch: v.metrics for v in lines if isinstance(v, ValLine)}
    cost.update(
        peak_memory_mb=_peak_memory_mb(),
        throughput=samples / train_time if train_time > 0 and samples > 0 else None,
        wall_time_s=time.time() - start,
    )
    return StageResult(
        config_hash=digest,
        knobs=applied,
        config=str(files.config),
        val=history[max(history)] if history else {},
        val_history=[{"epoch": e, **history[e]} for e in sorted(history)],
        test=test_metrics,
        cost=cost,
        checkpoint=files.checkpoint(),
        resumed_from=resume_from,
        nprocs=spec.nprocs,
        slot=os.environ.get("MATS_LAB_SLOT"),
        device=os.environ.get("CUDA_VISIBLE_DEVICES"),
        started=start,
        ended=time.time(),
        load_from=spec.load_from,
        machine=machine_label(),
    )


def _fast_cuda(cfg: Config) -> None:
    """TF32 matmuls and convolutions, and cuDNN's autotuner (fixed clip shapes)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    cfg.env_cfg = dict(cfg.get("env_cfg") or {}, cudnn_benchmark=True)


def _check_ranks_agree(runner: Any, rank: RankInfo, files: StageFiles) -> None:
    """Gather every rank's weight digest; rank 0 writes ``ranks.json``; all raise when the
    ranks disagree (their training was not synchronised)."""
    import torch.distributed as dist

    model = getattr(runner.model, "module", runner.model)
    digests: list[Any] = [None] * rank.world_size
    dist.all_gather_object(digests, parameter_digest(model))
    if rank.is_main:
        record = {"world_size": rank.world_size, "iter": runner.iter, "digests": digests}
        (files.work_dir / "ranks.json").write_text(json.dumps(record, indent=1))
    if len(set(digests)) != 1:
        raise RuntimeError(f"ranks hold different weights after training: {digests}")


def _samples(lines: list) -> int:
    # The hook counts from 0 in each process: the last train line is this process's count.
    train = [line for line in lines if isinstance(line, TrainLine)]
    return int(train[-1].samples or 0) if train else 0


def _number(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="the stage spec JSON file")
    args = parser.parse_args(argv)
    try:
        spec = read_stage_spec(Path(args.spec))
        if spec.nprocs > 1 and rank_info() is None and not spec.resolve_only:
            resolve(spec)  # config errors here, once, with their own exit status
            return launch(args.spec, spec.nprocs, spec.cpu_threads)
        result = run(spec)
    except (UnknownConfigKey, KnobError, FileNotFoundError, RecordError) as exc:
        print(f"mats-lab: stage config error: {exc}", file=sys.stderr, flush=True)
        return CONFIG_ERROR
    finally:
        _leave_group()
    if result is None:
        return 0
    work_dir = Path(spec.work_dir)
    write_result(StageFiles(work_dir).result, result)
    if not result.reused_from and result.config_hash:
        _register_twin(work_dir, result.config_hash)
    return 0


def _leave_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@record
def _entry() -> int:
    """The process entry: ``torch.distributed``'s ``record`` puts a failing rank's traceback
    in the launcher's summary, the last lines of the stage log."""
    return main()


if __name__ == "__main__":
    sys.exit(_entry())
