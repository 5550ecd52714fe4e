"""``mats-lab report``: tables, figures and an index page for studies, under ``reports/``."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from mats_lab.cli.common import fail


def report(
    studies: list[str] = typer.Argument(
        None, help="study files, folders or names (default: every study with results)"
    ),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI"),
    storage: str = typer.Option(None, "--storage", help="Optuna storage URL"),
    out: Path = typer.Option(Path("reports"), "--out", help="folder for reports/<study>/"),
    formats: str = typer.Option("md,csv,tex,html", "--format", help="table formats"),
    compare: bool = typer.Option(False, "--compare", help="also one table over all studies"),
    baseline: str = typer.Option(
        None,
        "--baseline",
        help="the baseline row: label or k=v[,k=v] (default: the study file's `baseline`)",
    ),
    tokens: bool = typer.Option(True, "--tokens/--no-tokens", help="token picture of the best"),
    clip: Path = typer.Option(None, "--clip", help="video for the token picture"),
    offline: bool = typer.Option(False, "--offline", help="read the Optuna storages only"),
    alpha: float = typer.Option(
        0.05, "--alpha", help="level of the paired tests against the baseline (CIs at 1-alpha)"
    ),
    adjust: str = typer.Option(
        "none",
        "--adjust",
        help="correct each metric's p-values for the number of rows (and of effect lines) "
        "tested: none, holm (family-wise error at alpha) or bh (Benjamini-Hochberg: false "
        "discovery rate at alpha)",
    ),
    reference: Path = typer.Option(
        None, "--reference", help="an earlier report folder: compare this run's figures with it"
    ),
    trials: list[Path] = typer.Option(
        None,
        "--trials",
        help="a trials.csv (or a report folder holding one) to report instead of the study's "
        "stores; give it again to pool runs with different seeds into one report",
    ),
) -> None:
    """Summarise studies: mean ± std and confidence interval over seeds per configuration,
    the paired test of every row against the baseline with a verdict, figures; prints the main
    table and writes every format under OUT/<study>/."""
    given = dict(locals())
    from mats_lab.report.build import ReportError, ReportOptions, parse_formats, run_report

    try:
        options = ReportOptions(
            out=out, formats=parse_formats(formats), baseline=baseline, tokens=tokens,
            clip=clip, tracking_uri=tracking_uri, storage=storage, use_mlflow=not offline,
            compare=compare, command=_command(studies, given), alpha=alpha, adjust=adjust,
            reference=reference, trials=tuple(trials or ()),
        )  # fmt: skip
        run_report(studies or [], options, echo=typer.echo)
    except ReportError as exc:
        fail(str(exc))


def _command(studies: list[str] | None, given: dict) -> str:
    """The command line as typed (options at their defaults left out)."""
    words = ["mats-lab", "report", *(studies or [])]
    defaults = {
        "out": Path("reports"), "formats": "md,csv,tex,html", "tokens": True, "alpha": 0.05,
        "adjust": "none",
    }  # fmt: skip
    for name, value in given.items():
        if name == "studies" or value is None or defaults.get(name) == value:
            continue
        if value is False and name != "tokens":  # --no-tokens is the one False that is typed
            continue
        flag = "--" + {"formats": "format", "tokens": "no-tokens"}.get(name, name.replace("_", "-"))
        if isinstance(value, list):  # a repeatable option: once per value
            words += [w for item in value for w in (flag, str(item))]
        else:
            words += [flag] if isinstance(value, bool) else [flag, str(value)]
    return shlex.join(words)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
