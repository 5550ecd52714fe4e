"""Where one tiny sweep stage spends its wall time: start-up, data wait, model compute,
validation, checkpoints, test.

Runs one stage the way ``mats-lab sweep`` does (the stage runner's own ``resolve`` applies the
study's overrides and knobs; ``Runner.from_cfg``; the MAC count; ``train``; optionally
``test``) in this process, with a hook that stamps every phase::

    python benchmarks/profile_tiny.py                                   # fine-tuning, 5 epochs
    python benchmarks/profile_tiny.py --stage pretrain --epochs 3
    python benchmarks/profile_tiny.py --threads 1 --set train_dataloader.num_workers=0
    python benchmarks/profile_tiny.py --no-cache        # decode the H.264 files every epoch

Phases (seconds and share of the wall time from the start of this script):

- ``imports``: torch, mmengine, mmaction, mats_lab (before anything is built);
- ``runner``: the config resolved, ``Runner.from_cfg`` (model built and initialised);
- ``macs``: the stage runner's MAC count (one forward per clip shape);
- ``train set-up``: from ``train()`` to the first epoch (datasets built and checked,
  dataloaders, weights loaded);
- ``data wait``: the training loop waiting for its next batch (what ``IterTimerHook`` logs as
  ``data_time``), dataloader worker start-up included;
- ``train step``: forward, backward, optimizer step and the iteration hooks;
- ``val``: every validation loop (its own data wait in brackets);
- ``checkpoint``: ``save_checkpoint`` calls;
- ``test``: the test loop, when ``--test``;
- ``other``: the rest (epoch hooks, logging, teardown).

Beside the wall time, CPU time (``cpu``): this process (model, hooks, validation in the main
process) and its children (the persistent dataloader workers: decoding and the data pipeline,
read from ``/proc`` at the end of training). On a shared machine wall times move with the
load; the CPU times much less, so compare those. The load average is printed beside the figures.
"""

from __future__ import annotations

import time

_T0 = time.monotonic()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "mm_configs"
STAGES = {
    "finetune": CONFIGS / "videomae_vit-tiny-p8_finetune_8x4x1_motion-synth.py",
    "pretrain": CONFIGS / "videomae_vit-tiny-p8_pretrain_8x4x1_motion-synth.py",
}


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _overrides(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        out[key] = _parse_value(value)
    return out


class _Clock:
    """Accumulates named spans."""

    def __init__(self) -> None:
        self.spans: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, name: str, seconds: float) -> None:
        self.spans[name] = self.spans.get(name, 0.0) + seconds
        self.counts[name] = self.counts.get(name, 0) + 1


def _children_cpu_s() -> float:
    """User + system CPU seconds of this process's live children (the dataloader workers),
    from ``/proc`` (Linux)."""
    me, total = os.getpid(), 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == me:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _phase_hook(clock: _Clock) -> Any:
    from mmengine.hooks import Hook

    class PhaseTimer(Hook):
        """Stamps the loop's phases into ``clock`` (highest priority: first in, last out)."""

        priority = "HIGHEST"

        def __init__(self) -> None:
            self.mark = 0.0
            self.val_start = 0.0
            self.val_mark = 0.0

        def before_train(self, runner: Any) -> None:
            clock.add("train_setup", time.monotonic() - clock.spans.pop("_train_call"))

        def before_train_epoch(self, runner: Any) -> None:
            self.mark = time.monotonic()

        def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
            now = time.monotonic()
            clock.add("data_wait", now - self.mark)
            self.mark = now

        def after_train_iter(
            self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
        ) -> None:
            now = time.monotonic()
            clock.add("train_step", now - self.mark)
            self.mark = now

        def before_val_epoch(self, runner: Any) -> None:
            self.val_start = self.val_mark = time.monotonic()

        def before_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
            now = time.monotonic()
            clock.add("val_data_wait", now - self.val_mark)
            self.val_mark = now

        def after_val_iter(
            self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
        ) -> None:
            self.val_mark = time.monotonic()

        def after_train(self, runner: Any) -> None:
            # persistent workers are still alive here: their CPU so far is all of it
            clock.add("workers_cpu", _children_cpu_s())

        def after_val_epoch(self, runner: Any, metrics: Any = None) -> None:
            clock.add("val", time.monotonic() - self.val_start)
            clock.metrics = dict(metrics or {})  # type: ignore[attr-defined]

    return PhaseTimer()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=sorted(STAGES), default="finetune")
    parser.add_argument("--config", type=Path, help="another config (default: the stage's)")
    parser.add_argument("--epochs", type=int, default=5, help="the epochs knob (default 5)")
    parser.add_argument(
        "--val-interval",
        type=int,
        default=5,
        help="train_cfg.val_interval (fine-tuning; default 5, as the studies)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (the sweep gives a lone stage all cores)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dotted config override (JSON value), repeatable",
    )
    parser.add_argument("--test", action="store_true", help="run the test loop after training")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="checked PyAV decoding of the files in every epoch instead of the "
        "decoded-clip cache (what the configs did before)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    from mats_lab.mm import compat

    compat.apply()
    import torch
    from mmengine.runner import Runner

    import mats_lab.mm  # noqa: F401  (registers the project's modules)
    from mats_lab.protocol.records import StageSpec
    from mats_lab.trial.flops import model_cost
    from mats_lab.trial.stage_run import resolve, share_batches_through_files

    clock = _Clock()
    clock.add("imports", time.monotonic() - _T0)
    config = args.config or STAGES[args.stage]
    overrides = _overrides(args.set)
    if args.stage == "finetune":
        overrides.setdefault("train_cfg.val_interval", args.val_interval)
    overrides.setdefault("model.backbone.temporal_center", True)
    if args.no_cache:
        loaders = ["train_dataloader"] + (["val_dataloader"] if args.stage == "finetune" else [])
        for loader in loaders:
            overrides[f"{loader}.dataset.decoded_cache"] = False
            overrides[f"{loader}.dataset.pipeline.0"] = {
                "type": "CheckedVideoInit",
                "backend": "pyav",
            }
    threads = args.threads or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="profile_tiny-") as tmp:
        work_dir = args.work_dir or Path(tmp)
        spec = StageSpec(
            config=str(config.resolve()),
            overrides=overrides,
            knobs={"epochs": args.epochs},
            seed=args.seed,
            work_dir=str(work_dir.resolve()),
            test=args.test,
            cpu_threads=threads,
        )
        start = time.monotonic()
        cfg, _ = resolve(spec)
        torch.set_num_threads(threads)
        share_batches_through_files()  # as the stage runner does
        runner = Runner.from_cfg(cfg)
        clock.add("runner", time.monotonic() - start)
        start = time.monotonic()
        with torch.random.fork_rng(devices=[]):
            model_cost(getattr(runner.model, "module", runner.model))
        clock.add("macs", time.monotonic() - start)

        save = runner.save_checkpoint

        def timed_save(*a: Any, **k: Any) -> Any:
            begin = time.monotonic()
            try:
                return save(*a, **k)
            finally:
                clock.add("checkpoint", time.monotonic() - begin)

        runner.save_checkpoint = timed_save  # type: ignore[method-assign]
        runner.register_hook(_phase_hook(clock))
        clock.spans["_train_call"] = time.monotonic()
        runner.train()
        if args.test:
            start = time.monotonic()
            test_metrics = runner.test()
            clock.add("test", time.monotonic() - start)
        else:
            test_metrics = {}
    wall = time.monotonic() - _T0
    report(args, cfg, clock, wall, threads, test_metrics)
    return 0


def report(args: Any, cfg: Any, clock: _Clock, wall: float, threads: int, test: dict) -> None:
    spans = clock.spans
    counted = (
        "imports",
        "runner",
        "macs",
        "train_setup",
        "data_wait",
        "train_step",
        "val",
        "checkpoint",
        "test",
    )
    other = wall - sum(spans.get(k, 0.0) for k in counted)
    loader = cfg.train_dataloader
    iters = clock.counts.get("train_step", 0)
    load = os.getloadavg()
    print(
        f"config {Path(cfg.filename).name}  epochs {args.epochs}  iterations {iters}  "
        f"batch {loader.batch_size}  workers {loader.num_workers}  torch threads {threads}"
    )
    print(
        f"load average before the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(f"{'phase':<14} {'seconds':>8} {'share':>7}  note")
    rows = [*counted, "other"]
    figures = {}
    for name in rows:
        seconds = other if name == "other" else spans.get(name, 0.0)
        figures[name] = seconds
        note = ""
        if name == "data_wait" and iters:
            note = f"{1000 * seconds / iters:.0f} ms/iteration"
        elif name == "train_step" and iters:
            note = f"{1000 * seconds / iters:.0f} ms/iteration"
        elif name == "val":
            note = (
                f"{clock.counts.get('val', 0)} runs, data wait "
                f"{spans.get('val_data_wait', 0.0):.1f} s"
            )
        elif name == "checkpoint":
            note = f"{clock.counts.get('checkpoint', 0)} saves"
        print(f"{name:<14} {seconds:>8.1f} {100 * seconds / wall:>6.1f}%  {note}")
    print(f"{'wall':<14} {wall:>8.1f}")
    own = resource.getrusage(resource.RUSAGE_SELF)
    cpu_main = own.ru_utime + own.ru_stime
    cpu_workers = spans.get("workers_cpu", 0.0)
    print(
        f"cpu: this process {cpu_main:.1f} s, dataloader workers {cpu_workers:.1f} s "
        f"({100 * cpu_workers / max(cpu_main + cpu_workers, 1e-9):.1f} % of the stage's CPU)"
    )
    metrics = getattr(clock, "metrics", {})
    if metrics or test:
        print(f"last val {metrics}  test {test}")
    if args.json:
        record = {
            "config": str(cfg.filename),
            "epochs": args.epochs,
            "iterations": iters,
            "threads": threads,
            "workers": loader.num_workers,
            "wall_s": wall,
            "phases_s": figures,
            "val_data_wait_s": spans.get("val_data_wait", 0.0),
            "loadavg": load,
            "cpu_main_s": cpu_main,
            "cpu_workers_s": cpu_workers,
            "cpus": os.cpu_count(),
            "set": args.set,
            "val": {k: float(v) for k, v in metrics.items()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
