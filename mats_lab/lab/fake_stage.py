"""A stand-in trial command with no model: ``python -m mats_lab.lab.fake_stage --spec S.json``.

It speaks the stage protocol of ``mats_lab.trial.stage_run`` through the same records
(:mod:`mats_lab.protocol.records`: stage spec, progress lines, per-epoch checkpoints with
resume, stage result) and sleeps instead of training, so the scheduler,
resume, retry, pruning and stage reuse are tested, and benchmarked, without torch. Its
behaviour comes from the stage's dotted overrides:

- ``fake.duration`` seconds of "training" in all (default 1.0), spread over ``fake.epochs``
  epochs (default 3);
- ``fake.accuracy`` the final validation top-1 (default ``0.5 + 0.4 * keep_ratio`` when the
  trial sets that knob, else 0.5); earlier epochs climb linearly towards it;
- ``fake.fail_times`` crash (exit 1) in the first N runs of this work dir;
- ``fake.config_error`` exit 3 at once, as the real runner does for an unknown key;
- ``fake.duration.<stage>`` (e.g. ``fake.duration.pretrain``) the duration of that stage only,
  over ``fake.duration``.
- ``fake.machine`` the machine line the result records (the real runner records its own).

A stage with ``nprocs`` > 1 checks that it was given that many GPUs (``CUDA_VISIBLE_DEVICES``;
none on CPU slots, exit 3 otherwise) and starts ``nprocs - 1`` child processes that stand in for
the other ranks (``sleep``, in the stage's process group, dying with it; their pids are in
``ranks.pid``; with ``fake.ranks_detached`` they do not die with it, so only a signal to the
whole group stops them), stopped when it ends. Its result records ``nprocs``, the devices and
slots it got, and when it started and ended, so the pool's packing can be checked from them.

Only the standard library and :mod:`mats_lab.protocol` are imported here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mats_lab.lab.launch import pdeathsig_prefix
from mats_lab.protocol.exits import CONFIG_ERROR, FAILED, OK
from mats_lab.protocol.layout import StageFiles
from mats_lab.protocol.records import (
    RecordError,
    StageResult,
    StageSpec,
    TrainLine,
    ValLine,
    append_progress,
    read_stage_spec,
    write_result,
)


def run(spec: StageSpec) -> int:
    work_dir = Path(spec.work_dir)
    files = StageFiles(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    options = spec.overrides
    knobs = spec.knobs
    if options.get("fake.config_error"):
        print("mats-lab: stage config error: fake.config_error is set", file=sys.stderr)
        return CONFIG_ERROR
    attempts_file = work_dir / "attempts"
    attempt = int(attempts_file.read_text()) + 1 if attempts_file.is_file() else 1
    attempts_file.write_text(str(attempt))
    devices = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if devices and len(devices) != spec.nprocs:
        print(
            f"mats-lab: stage config error: nprocs {spec.nprocs} but CUDA_VISIBLE_DEVICES "
            f"lists {len(devices)} GPUs",
            file=sys.stderr,
        )
        return CONFIG_ERROR
    epochs = int(options.get("fake.epochs", 3))
    duration = float(options.get(f"fake.duration.{spec.stage}", options.get("fake.duration", 1.0)))
    keep = knobs.get("keep_ratio")
    accuracy = float(options.get("fake.accuracy", 0.5 + 0.4 * keep if keep is not None else 0.5))
    start_epoch = 0
    marker = files.last_checkpoint
    if marker.is_file():
        start_epoch = int(Path(marker.read_text().strip()).stem.split("_")[-1])
        print(f"mats-lab: resuming from checkpoint {marker.read_text().strip()}", flush=True)
    began = time.time()
    detached = bool(options.get("fake.ranks_detached", False))
    ranks = _start_ranks(spec.nprocs, duration, work_dir / "ranks.pid", detached)
    try:
        code = _train(spec, files, start_epoch, epochs, duration, attempt, accuracy)
    finally:
        _stop_ranks(ranks)
    if code != OK:
        return code
    result = StageResult(
        val={"acc/top1": accuracy, "acc/top5": min(1.0, 2 * accuracy)},
        test={"acc/top1": accuracy} if spec.test else {},
        cost={
            "train_gmacs": 1.0 if keep is None else float(keep),
            "test_gmacs": 1.0 if keep is None else float(keep),
            "params_m": 1.0,
            "peak_memory_mb": 10.0,
            "throughput": 10.0 / max(duration / epochs, 1e-6),
            "wall_time_s": time.time() - began,
        },
        checkpoint=str(marker.read_text().strip()) if marker.is_file() else None,
        config_hash="fake",
        nprocs=spec.nprocs,
        started=began,
        ended=time.time(),
        slot=os.environ.get("MATS_LAB_SLOT", ""),
        device=os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        load_from=spec.load_from,
        resumed_from=str(start_epoch) if start_epoch else None,
        machine=options.get("fake.machine"),
    )
    write_result(files.result, result)
    return OK


def _train(
    spec: StageSpec,
    files: StageFiles,
    start_epoch: int,
    epochs: int,
    duration: float,
    attempt: int,
    accuracy: float,
) -> int:
    """Sleep through the epochs, writing progress lines and checkpoints (or crash)."""
    options = spec.overrides
    work_dir = files.work_dir
    marker = files.last_checkpoint
    progress = files.progress
    for epoch in range(start_epoch + 1, epochs + 1):
        time.sleep(duration / epochs)
        if attempt <= int(options.get("fake.fail_times", 0)) and epoch == max(1, epochs // 2):
            print(f"fake stage: simulated crash in epoch {epoch}", flush=True)
            return FAILED
        append_progress(
            progress,
            TrainLine(
                epoch=epoch,
                iter=epoch * 10,
                max_iters=epochs * 10,
                max_epochs=epochs,
                loss=2.0 / epoch,
                samples=(epoch - start_epoch) * 10,
                time=time.time(),
            ),
        )
        metrics = {
            "acc/top1": accuracy * epoch / epochs,
            "acc/top5": min(1.0, 2 * accuracy * epoch / epochs),
        }
        append_progress(progress, ValLine(epoch=epoch, metrics=metrics, time=time.time()))
        checkpoint = work_dir / f"epoch_{epoch}.ckpt"
        checkpoint.write_text(str(epoch))
        marker.write_text(str(checkpoint))
    return OK


def _start_ranks(
    nprocs: int, duration: float, pid_file: Path, detached: bool
) -> list[subprocess.Popen]:
    """``nprocs - 1`` processes standing in for the other ranks, dying with this one unless
    ``detached``."""
    sleep = shutil.which("sleep")
    if nprocs <= 1 or sleep is None:
        return []
    prefix = [] if detached else list(pdeathsig_prefix())
    ranks = [
        subprocess.Popen([*prefix, sleep, str(duration + 600)])  # noqa: S603 - no shell
        for _ in range(nprocs - 1)
    ]
    pid_file.write_text("".join(f"{r.pid}\n" for r in ranks))
    return ranks


def _stop_ranks(ranks: list[subprocess.Popen]) -> None:
    for rank in ranks:
        rank.kill()
        rank.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a trial stage that sleeps instead of training")
    parser.add_argument("--spec", required=True)
    args = parser.parse_args(argv)
    try:
        spec = read_stage_spec(Path(args.spec))
    except RecordError as exc:
        print(f"mats-lab: stage config error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    return run(spec)


if __name__ == "__main__":
    sys.exit(main())
