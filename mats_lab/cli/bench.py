"""``mats-lab bench``: measured speed and memory of MATS against VideoMAE, side by side."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mats_lab.cli.common import fail

DEFAULT_VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos" / "demo.mp4"


def bench(
    model: str = typer.Option("tiny", "--model", help="tiny, small (ViT-S/16) or base (ViT-B/16)"),
    frames: int | None = typer.Option(None, "--frames", help="T (default: the model's)"),
    size: int | None = typer.Option(None, "--size", help="S: S x S clips (default: model's)"),
    batch: int | None = typer.Option(None, "--batch", help="B clips per step (default: model's)"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda"),
    json_path: Path | None = typer.Option(None, "--json", dir_okay=False, help="write raw figures"),
    repeats: int = typer.Option(7, "--repeats", help="timed steps per workload"),
    warmup: int = typer.Option(2, "--warmup", help="untimed steps per workload first"),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (default: torch's)"),
    amp: bool = typer.Option(False, "--amp/--no-amp", help="bfloat16 autocast"),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="peak memory (child processes)"),
    video: Path | None = typer.Option(
        DEFAULT_VIDEO, "--video", help="real clip for the data-pipeline throughput"
    ),
    pair: str = typer.Option("both", "--pair", help="pretrain, finetune or both"),
    pipeline: bool = typer.Option(True, "--pipeline/--no-pipeline", help="pipeline clips/s"),
) -> None:
    """Time, MACs and peak memory of VideoMAE vs MATS pre-training and full vs MATS
    fine-tuning (interleaved, medians, ratios), scoring + selection share, pipeline clips/s."""
    from mats_lab.trial.bench import BenchSpec, format_result, run_bench

    try:
        spec = BenchSpec(
            model=model,
            frames=frames,
            size=size,
            batch=batch,
            device=device,
            warmup=warmup,
            repeats=repeats,
            threads=threads,
            amp=amp,
            pairs=("pretrain", "finetune") if pair == "both" else (pair,),
            video=str(video) if pipeline and video is not None else None,
        )
        result = run_bench(spec, memory=memory, progress=lambda line: typer.echo(line, err=True))
    except (ValueError, RuntimeError) as err:
        fail(str(err))
    typer.echo(format_result(result))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        typer.echo(f"wrote {json_path}")


def register(app: typer.Typer) -> None:
    """Add ``bench`` to the main app."""
    app.command("bench")(bench)
