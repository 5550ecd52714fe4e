"""``mats-lab flops`` and ``mats-lab convert-ckpt``: tools on models and checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mats_lab.cli.common import fail, parse_cfg_options


def flops(
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="an mm_configs/ file"),
    cfg_options: list[str] = typer.Option(
        [], "--cfg-options", help="override a config key, key=value (repeatable)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Multiply-accumulates per clip (train-mode forward, one test view) and parameters."""
    from mats_lab.trial.configs import load_config
    from mats_lab.trial.flops import config_cost

    try:
        cfg = load_config(config, parse_cfg_options(cfg_options))
        cost = config_cost(cfg)
    except (ValueError, KeyError, TypeError) as err:
        fail(f"{config}: {err}")
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "train_gmacs": round(cost.train_gmacs, 4),
                    "test_gmacs": round(cost.test_gmacs, 4),
                    "params_m": round(cost.params_m, 4),
                }
            )
        )
        return
    typer.echo(f"config      {config}")
    typer.echo(f"train clip  {cost.train_clip}  {cost.train_gmacs:.2f} G MACs (train-mode forward)")
    typer.echo(f"test view   {cost.test_clip}  {cost.test_gmacs:.2f} G MACs")
    typer.echo(f"parameters  {cost.params_m:.2f} M")
    typer.echo("(MACs, counted by torch.utils.flop_counter on what runs; papers call them FLOPs)")


def convert_ckpt(
    src: Path = typer.Argument(..., exists=True, dir_okay=False, help="official checkpoint"),
    dst: Path = typer.Argument(..., dir_okay=False, help="output .pth"),
    to: str = typer.Option("recognizer", "--to", help="recognizer or pretrainer"),
) -> None:
    """Convert an official VideoMAE / EVEREST checkpoint to mats-lab / MMAction2 keys."""
    from mats_lab.trial.convert_ckpt import convert_checkpoint

    try:
        count = convert_checkpoint(src, dst, to)
    except (ValueError, RuntimeError, OSError) as err:
        fail(f"{src}: {err}" if "--to" not in str(err) else str(err))
    typer.echo(f"wrote {dst}: {count} tensors for a {to}")


def register(app: typer.Typer) -> None:
    """Add the model commands to the main app."""
    app.command("flops")(flops)
    app.command("convert-ckpt")(convert_ckpt)
