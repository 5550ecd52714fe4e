"""``mats-lab train`` (MMAction2's tools/train.py on a config) and ``mats-lab tools-demo``."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import typer

from mats_lab.cli.common import fail, parse_cfg_options

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "mm_configs"


def _run(cmd: list[str]) -> None:
    typer.echo("$ " + " ".join(cmd), err=True)
    code = subprocess.call(cmd)  # noqa: S603 - argument list, no shell
    if code:
        name = cmd[2] if cmd[1] == "-m" else Path(cmd[1]).name
        fail(f"{name} exited with {code}", code)


def train(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="an mm_configs/ file"),
    work_dir: Path = typer.Option(None, "--work-dir", help="default: work_dirs/<config name>"),
    resume: bool = typer.Option(False, "--resume", help="continue from the last checkpoint"),
    amp: bool = typer.Option(False, "--amp", help="mixed precision (GPU)"),
    gpus: int = typer.Option(
        1,
        "--gpus",
        min=1,
        help="processes, one per device (CUDA_VISIBLE_DEVICES picks them; gloo CPU ranks "
        "without CUDA); above 1 the run goes through the stage runner under torch's launcher",
    ),
    cfg_options: list[str] = typer.Option([], "--cfg-options", help="key=value (repeatable)"),
) -> None:
    """Train a config with MMAction2's unchanged tools/train.py (one process), or on
    ``--gpus N`` ranks through mats-lab's stage runner (``torch.distributed.run``, loopback
    rendezvous, the LR scaled with the total batch)."""
    work_dir = work_dir or Path("work_dirs") / config.stem
    options = parse_cfg_options(cfg_options)
    if gpus > 1:
        _run_ranks(config, work_dir, resume, amp, gpus, options)
        return
    from mats_lab.lab.mmtools import train_command

    _run(train_command(config, work_dir, resume, amp, options))


def _run_ranks(
    config: Path, work_dir: Path, resume: bool, amp: bool, nprocs: int, options: dict
) -> None:
    """Write a stage spec for ``nprocs`` ranks into ``work_dir`` and run the stage runner."""
    import sys

    from mats_lab.protocol.layout import StageFiles
    from mats_lab.protocol.records import StageSpec, write_stage_spec

    files = StageFiles(work_dir.resolve())
    if files.checkpoint() and not resume:
        fail(f"{work_dir} already holds a checkpoint: pass --resume or another --work-dir")
    files.work_dir.mkdir(parents=True, exist_ok=True)
    spec = StageSpec(
        config=str(config.resolve()),
        overrides=options,
        knobs={"precision": "bf16"} if amp else {},
        work_dir=str(files.work_dir),
        nprocs=nprocs,
    )
    spec_path = files.work_dir / "train_stage.json"
    write_stage_spec(spec_path, spec)
    _run([sys.executable, "-m", "mats_lab.trial.stage_run", "--spec", str(spec_path)])


def _last_checkpoint(work_dir: Path) -> Path:
    marker = work_dir / "last_checkpoint"
    if not marker.is_file():
        fail(f"{work_dir} holds no checkpoint (no last_checkpoint file)")
    return Path(marker.read_text().strip())


def _best_or_last(work_dir: Path) -> Path:
    best = sorted(work_dir.glob("best_*.pth"))
    return best[-1] if best else _last_checkpoint(work_dir)


def _test_metrics(work_dir: Path) -> dict:
    """The metrics tools/test.py logged last (``<timestamp>/<timestamp>.json``)."""
    logs = sorted(work_dir.glob("*/*.json"))
    if not logs:
        fail(f"no test metrics found under {work_dir}")
    return json.loads(logs[-1].read_text().strip().splitlines()[-1])


def tools_demo(
    work_dir: Path = typer.Option(Path("work_dirs/tools-demo"), "--work-dir"),
    pretrain_epochs: int = typer.Option(10, help="MATS pre-training epochs"),
    finetune_epochs: int = typer.Option(30, help="MATS fine-tuning epochs"),
) -> None:
    """The embedded default, end to end on CPU: MATS pre-training, MATS fine-tuning from its
    checkpoint, multi-clip test, all through MMAction2's own tools, then the MACs per clip."""
    from mats_lab.lab.mmtools import test_command, train_command

    pre_cfg = REPO_CONFIGS / "mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"
    ft_cfg = REPO_CONFIGS / "mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
    start = time.monotonic()
    _run(
        train_command(
            pre_cfg, work_dir / "pretrain", cfg_options={"train_cfg.max_epochs": pretrain_epochs}
        )
    )
    pre_ckpt = _last_checkpoint(work_dir / "pretrain")
    _run(
        train_command(
            ft_cfg,
            work_dir / "finetune",
            cfg_options={"load_from": str(pre_ckpt), "train_cfg.max_epochs": finetune_epochs},
        )
    )
    ckpt = _best_or_last(work_dir / "finetune")
    _run(test_command(ft_cfg, ckpt, work_dir / "test"))
    metrics = _test_metrics(work_dir / "test")
    from mats_lab.cli.model_tools import flops

    typer.echo("")
    typer.echo(f"pre-training checkpoint  {pre_ckpt}")
    typer.echo(f"fine-tuned checkpoint    {ckpt}")
    typer.echo(f"test metrics             {json.dumps(metrics)}")
    typer.echo(f"wall time                {time.monotonic() - start:.0f} s")
    flops(ft_cfg, [], False)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("tools-demo")(tools_demo)
