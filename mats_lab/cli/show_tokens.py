"""``mats-lab show-tokens``: draw which tokens (and frames) a MATS model keeps on a video."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from mats_lab.cli.common import fail, parse_cfg_options

DEFAULT_CONFIG = (
    Path(__file__).resolve().parents[2]
    / "mm_configs"
    / "mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
)


def show_tokens(
    video: Path = typer.Argument(..., dir_okay=False, help="the video file"),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="the PNG to write"),
    config: Path = typer.Option(
        DEFAULT_CONFIG, "--config", dir_okay=False, help="an mm_configs/ file (default: tiny MATS)"
    ),
    checkpoint: Path = typer.Option(
        None, "--checkpoint", dir_okay=False, help="weights (default: seeded fresh init)"
    ),
    keep_ratio: float = typer.Option(
        None, "--keep-ratio", help="fraction of all tokens kept (default: the config's)"
    ),
    json_out: Path = typer.Option(None, "--json", dir_okay=False, help="also write the data"),
    start: int = typer.Option(None, "--start", help="first source frame the sampler may use"),
    end: int = typer.Option(None, "--end", help="source frame the sampler stops before"),
    cfg_options: list[str] = typer.Option(
        [], "--cfg-options", help="override a config key, key=value (repeatable)"
    ),
) -> None:
    """Decode one view of VIDEO as the config's test pipeline does, run the model's own token
    (and frame) selection on it, and draw the frames with kept tokens bright, dropped dim."""
    if not video.is_file():
        fail(f"video {video} does not exist")
    if not config.is_file():
        fail(f"config {config} does not exist")
    if checkpoint is not None and not checkpoint.is_file():
        fail(f"checkpoint {checkpoint} does not exist")
    if keep_ratio is not None and not 0.0 < keep_ratio <= 1.0:
        fail(f"--keep-ratio must be in (0, 1], got {keep_ratio}")
    options = parse_cfg_options(cfg_options)

    from mats_lab.data.decode import VideoDecodeError
    from mats_lab.trial.token_view import compute_token_view, render_token_view

    try:
        view = compute_token_view(config, video, keep_ratio, checkpoint, options, (start, end))
    except VideoDecodeError as err:
        fail(f"cannot decode {video}: {err}" if str(video) not in str(err) else str(err))
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as err:
        fail(f"{video} with {config}: {err}")
    size = render_token_view(view, out, title=f"{video.name} | {config.name}")
    t, h, w = view.grid
    typer.echo(
        f"wrote {out} ({size[0]}x{size[1]}): {len(view.kept)}/{t * h * w} tokens kept, "
        f"frames {view.frame_indices.tolist()}"
    )
    if json_out is not None:
        record = {
            "video": str(video),
            "config": str(config),
            "checkpoint": None if checkpoint is None else str(checkpoint),
            **view.to_json(),
            # relative to the JSON file, so a report folder can be moved or committed
            "image": os.path.relpath(out.resolve(), json_out.resolve().parent),
            "image_size": list(size),
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(record, indent=1) + "\n")
        typer.echo(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    """Add ``show-tokens`` to the main app."""
    app.command("show-tokens")(show_tokens)
