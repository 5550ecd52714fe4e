"""``mats-lab data``: the embedded datasets, and checking any dataset's videos."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from mats_lab.cli.common import fail

app = typer.Typer(
    help="Generate the embedded datasets; check the videos of any dataset.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Generate the embedded datasets; check the videos of any dataset."""  # keeps sub-commands


@app.command()
def synth(
    out: Path | None = typer.Option(
        None,
        "--out",
        help="dataset folder (default data/motion_synth; with --static, data/motion_synth-static)",
    ),
    seed: int = typer.Option(0, "--seed", help="generator seed"),
    size: str = typer.Option(
        "default",
        "--size",
        help="preset: tiny, small, default, large (cluttered); smooth, smooth-unlabelled "
        "(the smooth benchmark's; the configs keep them in data/motion_synth_smooth and "
        "data/motion_synth_smooth_unlabelled with seed 1)",
    ),
    static: bool = typer.Option(
        False, "--static/--no-static", help="the control: every frame identical (no motion)"
    ),
    frames: int | None = typer.Option(None, "--frames", help="override the preset's frames"),
    height: int | None = typer.Option(None, "--height", help="override the preset's height"),
    width: int | None = typer.Option(None, "--width", help="override the preset's width"),
    force: bool = typer.Option(
        False, "--force", help="rebuild an existing motion-synth folder with other parameters"
    ),
) -> None:
    """Build the motion-classification video dataset (class = motion only), if not there."""
    from mats_lab.data import synth as generator
    from mats_lab.data.progress_bar import BuildBar

    if out is None:
        out = Path(generator.DEFAULT_ROOT)
        out = generator.static_root(out) if static else out
    start = time.perf_counter()
    try:
        before = generator.read_meta(out)
        with BuildBar(f"generating {out}") as bar:
            root = generator.ensure_dataset(
                out,
                seed,
                size,
                static,
                frames=frames,
                height=height,
                width=width,
                force=force,
                progress=bar.update,
            )
    except ValueError as err:  # unknown preset, bad override, mismatching folder, bad meta.json
        fail(str(err))
    seconds = time.perf_counter() - start
    meta = generator.read_meta(root)
    assert meta is not None  # ensure_dataset returns only complete folders
    params = meta["params"]
    built = meta != before  # --force on a matching folder leaves it as it is
    typer.echo(f"{'built' if built else 'already there'}: {root}")
    counts = ", ".join(f"{split} {n}" for split, n in meta["counts"].items())
    typer.echo(f"clips      {counts} ({len(meta['classes'])} classes)")
    typer.echo(
        f"videos     {params['frames']} frames, {params['height']}x{params['width']} px, "
        f"{params['fps']} fps, static={params['static']}"
    )
    typer.echo(f"time       {seconds:.1f} s")


@app.command()
def check(
    source: Path = typer.Argument(
        ..., help="an annotation list (<path> <label> per line) or an MMEngine config (.py)"
    ),
    root: Path | None = typer.Option(
        None, "--root", help="folder the list's paths are relative to (default: the list's)"
    ),
    min_frames: int | None = typer.Option(
        None, "--min-frames", help="frames a clip needs (default: a config's sampler span, or 1)"
    ),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="processes (default: CPU count)"),
    full: bool = typer.Option(False, "--full", help="decode and check every frame with PyAV"),
    backends: str | None = typer.Option(
        None, "--backends", help="comma-separated, e.g. pyav,decord,opencv (default: pyav,decord)"
    ),
    report: Path | None = typer.Option(
        None, "--report", help="JSON report (default: <source stem>.check.json here)"
    ),
    write_clean: Path | None = typer.Option(
        None, "--write-clean", help="write the annotation list without the bad videos"
    ),
) -> None:
    """Probe every video of a dataset; report bad ones; exit 1 if there are any."""
    from mats_lab.data import datacheck

    try:
        entries = datacheck.load_entries(source, root, min_frames)
        chosen = datacheck.parse_backends(backends)
    except (OSError, ValueError, SyntaxError) as err:
        fail(str(err))
    start = time.perf_counter()
    with typer.progressbar(length=len(entries), label="checking", file=sys.stderr) as bar:
        results = datacheck.check_videos(
            entries, jobs, chosen, full=full, on_done=lambda _: bar.update(1)
        )
    seconds = time.perf_counter() - start
    report = report or Path(f"{source.stem}.check.json")
    datacheck.write_report(results, report, source=str(source), seconds=round(seconds, 3))
    for line in datacheck.describe(results, seconds):
        typer.echo(line)
    typer.echo(f"report     {report}")
    if write_clean is not None:
        try:
            kept = datacheck.write_clean_list(results, write_clean)
        except ValueError as err:
            fail(str(err))
        typer.echo(f"clean list {write_clean} ({kept} of {len(results)} videos)")
    if not all(r.ok for r in results):
        raise typer.Exit(1)
