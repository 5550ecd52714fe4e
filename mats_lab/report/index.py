"""The index page of a report (``index.md`` / ``index.html``), as blocks for
:mod:`mats_lab.report.pages`: where the numbers come from and the command that produced them,
trial counts, the baseline, the table and its legend, the figures, the token picture, the
trials left out of the table and the notes."""

from __future__ import annotations

import time
from pathlib import Path

from mats_lab.report import pages, stats_table
from mats_lab.report.collect import StudyData
from mats_lab.report.stats import ADJUST_TEXT
from mats_lab.report.stores import distinct_machines
from mats_lab.report.summarise import Summary

__all__ = [
    "counts_text",
    "index_blocks",
    "machine_notes",
    "seed_notes",
    "shown_url",
    "table_caption",
]


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


def _verdict_titles(summary: Summary) -> list[str]:
    return [c.title for c in summary.columns if c.kind == "acc"]


def seed_notes(summary: Summary) -> list[str]:
    """What the seed counts allow: nothing ranked with one seed per configuration, else the
    configurations with fewer than 2 seeds (no interval, no test)."""
    if summary.ranks_nothing():
        return [
            "one seed per configuration: no interval and no test, so this report ranks "
            "nothing and marks no row best; run at least 2 seeds per configuration"
        ]
    few = summary.few_seeds()
    if not few:
        return []
    text = "fewer than 2 seeds (no interval; no test against the baseline): " + ", ".join(few)
    if summary.baseline in few:
        text += " — the baseline among them, so no row can be tested"
    return [text]


def machine_notes(machines: list[str]) -> list[str]:
    """``machines``: each complete trial's ``machine`` (stages on several: ``"a; b"``; empty:
    not recorded). A note when the trials ran on more than one machine: the same seed can give
    a different run on another CPU (benchmarks/README.md), so single trials do not compare."""
    seen = distinct_machines(machines)
    if len(seen) < 2:
        return []
    return [
        f"the trials ran on {len(seen)} machines ({' / '.join(seen)}): the same seed can train "
        "differently on another machine's CPU kernels, so compare verdicts, not single trials"
    ]


def table_caption(summary: Summary) -> str:
    """The caption of the LaTeX table: what the cells, verdicts and bold mean."""
    against = "each study's baseline" if summary.baseline is None else "the baseline"
    text = (
        f"mean ± std over seeds; in parentheses the change against {against} (accuracy in "
        "points, cost as a ratio); verdicts: paired t-test by seed against "
        f"{against} at alpha {summary.alpha:g}; bold: better than {against} by that test, "
        "the best mean among those."
    )
    if summary.ranks_nothing():
        text += " One seed per configuration: nothing is ranked, nothing is bold."
    return text


def _legend(summary: Summary) -> str:
    verdicts = _verdict_titles(summary)
    text = (
        "Cells: mean ± sample std over seeds (`seeds`: complete trials of the configuration); "
        "in parentheses the difference of the means to the baseline row, accuracy in points "
        "and costs as a ratio."
    )
    if verdicts:
        text += (
            f" `vs baseline` columns (for {', '.join(verdicts)}; cost columns carry no "
            "verdict): two-sided paired t-test against the baseline over the seeds both rows "
            f"have, at alpha = {summary.alpha:g}: better, worse, or no evidence; `n<2` where "
            "fewer than 2 seeds pair up (no test). "
            + (
                f"The p-values are {ADJUST_TEXT[summary.adjust]}-adjusted over each metric's "
                f"rows (`--adjust {summary.adjust}`), and the verdicts follow them."
                if summary.adjust in ADJUST_TEXT
                else "Each row is tested on its own, without correction for the number of rows."
            )
        )
    text += (
        " **Bold** (any column): better than the baseline by that paired test, and the best "
        "mean among such rows (the baseline when every other row is worse); where no test "
        "supports a difference nothing is bold."
    )
    if summary.ranks_nothing():
        text += " **One seed per configuration: this table ranks nothing.**"
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
        if url.startswith(prefix) and Path(url.removeprefix(prefix)).is_absolute():
            return prefix + _shown_path(Path(url.removeprefix(prefix)))
    return url


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies under it, else absolute."""
    path = path.absolute()
    return str(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)


def _source_text(data: StudyData) -> str:
    if data.source == "tables":
        files = ", ".join(f"`{_shown_path(p)}`" for p in data.tables)
        runs = f"{len(data.tables)} runs pooled" if len(data.tables) > 1 else "one run"
        return f"Numbers from trial tables ({runs}): {files}."
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
    stats: tuple[str, str] = ("", ""),
    effects: tuple[str, str] = ("", ""),
    command: str,
    formats: tuple[str, ...],
    data: StudyData | None = None,
    figs: list[Path] | None = None,
    tokens: tuple[Path | None, str] | None = None,
) -> list[pages.Block]:
    """The index page: provenance, counts, baseline, the table with its links and legend, the
    statistics table (``stats``: its Markdown and HTML; empty: none), the effects table
    (``effects``, the same; empty for fewer than two factors), the figures, the token
    picture (``tokens``: its path or None, and a note), the trials left out of the table, and
    the notes."""
    from mats_lab.protocol.provenance import git_commit

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
    if stats[0]:
        level = f"{100 * (1 - s.alpha):g} %"
        blocks.append(B("h2", "Statistics against the baseline"))
        names = {"md": "Markdown"}
        stats_links = [(names.get(f, f.upper()), f"stats.{f}") for f in formats]
        blocks.append(B("links", links=stats_links))
        blocks.append(B("table", markdown=stats[0], html=stats[1]))
        blocks.append(
            B(
                "p",
                f"Per configuration: mean ± sample std and the {level} confidence interval of "
                "the mean over seeds (Student's t; none for one seed). Against the baseline: "
                "the difference configuration minus baseline, paired by seed over the seeds "
                f"both have (accuracy in points), its {level} interval and the two-sided paired "
                f"t-test (`scipy.stats.ttest_rel`); {stats_table.verdict_rule(s)}. "
                "Seeds for 80 % power: a planning figure for the next run, the fewest seeds "
                f"with which that test at alpha = {s.alpha:g}"
                + (" (unadjusted)" if s.adjust in ADJUST_TEXT else "")
                + " would call a difference as large "
                "as this one with probability 0.8, given the spread of the paired differences "
                "seen here (noncentral t); a verdict on a line that needs more seeds than the "
                "run has is likely to change when the study is run again.",
            )
        )
    if effects[0]:
        blocks.append(B("h2", "The effect of each factor, the others held"))
        effect_links = [({"md": "Markdown"}.get(f, f.upper()), f"effects.{f}") for f in formats]
        blocks.append(B("links", links=effect_links))
        blocks.append(B("table", markdown=effects[0], html=effects[1]))
        blocks.append(
            B(
                "p",
                "Each line changes one factor from the baseline's level and holds the others: "
                "the configuration minus its control (the same configuration with that factor "
                "at the baseline's level), paired by seed, with its "
                f"{100 * (1 - s.alpha):g} % interval and the paired t-test. In a factorial "
                "study this separates the factors, where the table above pairs every row with "
                "the one baseline. "
                + (
                    f"Verdicts: {stats_table.verdict_rule(s, 'lines')}."
                    if s.adjust in ADJUST_TEXT
                    else "Each line is tested on its own (no correction for their number)."
                ),
            )
        )
    blocks.append(B("h2", "Figures"))
    if figs:
        blocks.append(
            B(
                "p",
                f"Error bars: the {100 * (1 - s.alpha):g} % confidence interval of the mean "
                "over seeds (none for a configuration with one seed).",
            )
        )
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
