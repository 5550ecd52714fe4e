"""The index page of a report (``index.md`` / ``index.html``), as blocks for
:mod:`mats_lab.report.pages`: where the numbers come from and the command that produced them,
trial counts, the baseline, the table and its legend, the figures, the token picture, the
trials left out of the table and the notes."""

from __future__ import annotations

import time
from pathlib import Path

from mats_lab.report import pages
from mats_lab.report.collect import StudyData
from mats_lab.report.summarise import Summary

__all__ = ["counts_text", "index_blocks", "shown_url"]


def counts_text(summary: Summary) -> str:
    total = sum(summary.counts.values())
    words = {
        "COMPLETE": "complete",
        "PRUNED": "pruned",
        "FAIL": "failed",
        "RUNNING": "running",
        "WAITING": "queued",
    }
    parts = [f"{n} {words.get(s, s.lower())}" for s, n in summary.counts.items()]
    return f"{total} trials: {', '.join(parts)}." + (
        " Only complete trials enter the table; the others are listed below."
        if total > summary.counts.get("COMPLETE", 0)
        else ""
    )


def _legend(summary: Summary) -> str:
    text = (
        "Cells: mean ± sample std over seeds (`seeds`: complete trials of the configuration); "
        "in parentheses the difference to the baseline row, accuracy in points and costs as a "
        "ratio; **bold**: the best value of the column."
    )
    keys = {c.key for c in summary.columns}
    if "pretrain_gmacs" in keys:
        text += " Pre-train GMACs: multiply-accumulates of one pre-training forward per clip."
    if "finetune_gmacs" in keys:
        text += " Fine-tune GMACs: one test view of the fine-tuned model."
    if "wall" in keys:
        text += " Wall time: every stage of the trial, reused stages included."
    return text


def shown_url(url: str | None) -> str:
    """A store URL with a local path relative to the working directory (a committed report
    should not name the machine's folders)."""
    if not url:
        return ""
    for prefix in ("sqlite:///", "journal://"):
        if url.startswith(prefix):
            path = Path(url.removeprefix(prefix))
            if path.is_absolute() and path.is_relative_to(Path.cwd()):
                return prefix + str(path.relative_to(Path.cwd()))
    return url


def _source_text(data: StudyData) -> str:
    if data.source == "mlflow":
        return f"Numbers from MLflow (`{shown_url(data.tracking_uri)}`, experiment `{data.name}`)."
    if data.tracking_uri and any("MLflow unavailable" in n for n in data.notes):
        return (
            "MLflow was unavailable: the tables come from the Optuna storage alone "
            f"(`{shown_url(data.storage_url)}`)."
        )
    return f"Numbers from the Optuna storage (`{shown_url(data.storage_url)}`)."


def index_blocks(
    s: Summary,
    *,
    markdown: str,
    html: str,
    notes: list[str],
    command: str,
    formats: tuple[str, ...],
    data: StudyData | None = None,
    figs: list[Path] | None = None,
    tokens: tuple[Path | None, str] | None = None,
) -> list[pages.Block]:
    """The index page: provenance, counts, baseline, the table with its links and legend, the
    figures, the token picture (``tokens``: its path or None, and a note), the trials left
    out of the table, and the notes."""
    from mats_lab.lab.records import git_commit

    figs = figs or []
    B = pages.Block
    root = data.root if data is not None and data.root else Path.cwd()
    stamp = time.strftime("%Y-%m-%d %H:%M")
    blocks = [B("h1", f"Study {s.study}")]
    if data is not None and data.description:
        blocks.append(B("p", data.description))
    blocks.append(B("p", f"Produced by `{command}` at commit `{git_commit(root)[:10]}`, {stamp}."))
    if data is not None:
        blocks.append(B("p", _source_text(data)))
    blocks.append(B("p", counts_text(s)))
    if s.baseline_reason:
        base = f"`{s.baseline}`: " if s.baseline else ""
        blocks.append(
            B("p", f"Baseline row: {base}{s.baseline_reason} (choose another with `--baseline`).")
        )
    blocks.append(B("h2", "Results"))
    links = [(f.upper(), f"results.{f}") for f in formats if f != "md"]
    blocks.append(
        B("links", links=[("Markdown", "results.md"), *links, ("all trials (CSV)", "trials.csv")])
    )
    blocks.append(B("table", markdown=markdown, html=html))
    blocks.append(B("p", _legend(s)))
    if s.fixed:
        blocks.append(
            B("p", "Same in every row: " + ", ".join(f"{k}={v}" for k, v in s.fixed.items()) + ".")
        )
    blocks.append(B("h2", "Figures"))
    for png in (f for f in figs if f.suffix == ".png"):
        blocks.append(B("image", png.name, alt=png.stem.replace("_", " ")))
        if png.with_suffix(".svg") in figs:
            blocks.append(B("links", links=[("SVG", png.with_suffix(".svg").name)]))
    if tokens is not None:
        blocks.append(B("h2", "Token selection of the best trial"))
        path, note = tokens
        if path is not None:
            blocks += [
                B("p", f"`mats-lab show-tokens`: {note}; kept tokens bright, dropped dim."),
                B("image", path.name, alt="token selection"),
            ]
        else:
            blocks.append(B("p", f"Not drawn: {note}."))
    blocks.append(B("h2", "Trials not in the table"))
    if len(s.excluded):
        blocks.append(
            B("table", markdown=pages.frame_markdown(s.excluded), html=pages.frame_html(s.excluded))
        )
    else:
        blocks.append(B("p", "None: every trial completed."))
    if notes:
        blocks += [B("h2", "Notes"), B("list", items=notes)]
    return blocks
