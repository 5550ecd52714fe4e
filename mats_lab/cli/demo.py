"""``mats-lab demo``: the platform's main job on the embedded default, exactly what ``make
demo`` runs: the keep-ratio study, then its report beside (never over) the committed reference,
compared with it."""

from __future__ import annotations

from pathlib import Path

import typer

REPO = Path(__file__).resolve().parents[2]


def demo(
    study: Path = typer.Option(
        REPO / "studies" / "keep_ratio.yaml", "--study", help="the study to run and report"
    ),
    out: Path = typer.Option(Path("reports/local"), "--out", help="where the report goes"),
    reference: Path = typer.Option(
        REPO / "reports", "--reference", help="the committed reports to compare with"
    ),
    fresh: bool = typer.Option(False, "--fresh", help="start the study over"),
) -> None:
    """Run STUDY (resuming it if it exists), then report it into OUT/<study>/ and compare the
    figures with REFERENCE/<study>/: mats-lab sweep + mats-lab report --reference."""
    code = _mats_lab(["sweep", str(study), *(["--fresh"] if fresh else [])])
    if code not in (0, 1):  # 1: some trials failed; still report what finished
        raise typer.Exit(code)
    reported = _mats_lab(["report", str(study), "--out", str(out), "--reference", str(reference)])
    if reported:
        raise typer.Exit(reported)
    typer.echo(f"open {out / study.stem / 'index.html'} (or index.md) to look at the result")
    if code:
        raise typer.Exit(code)


def _mats_lab(args: list[str]) -> int:
    """Run one mats-lab command in this process (its options at their defaults); its exit
    status."""
    import typer.main

    from mats_lab.cli.main import app

    status = typer.main.get_command(app).main(args, prog_name="mats-lab", standalone_mode=False)
    return int(status or 0)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
