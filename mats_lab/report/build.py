"""``mats-lab report``: from study arguments to ``reports/<study>/`` (tables in every format,
figures, the token picture, ``index.md`` / ``index.html``) and the text for the terminal.

collect (:mod:`~mats_lab.report.collect`) -> summarise (:mod:`~mats_lab.report.summarise`,
:mod:`~mats_lab.report.figures`) -> render (:mod:`~mats_lab.report.tables`,
:mod:`~mats_lab.report.plots`, :mod:`~mats_lab.report.pages`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mats_lab.report import figures, index, pages, plots, stats_table, tables
from mats_lab.report.collect import (
    StudyData,
    collect,
    collect_tables,
    curves,
    mlflow_experiments,
)
from mats_lab.report.fit_notes import pretraining_fit_note
from mats_lab.report.reference import (
    compare_verdicts,
    compare_with_reference,
    effect_line,
    find_reference,
    machine_line,
    reference_markdown,
    verdicts_markdown,
)
from mats_lab.report.sources import SourceError, StudySource, discover, resolve
from mats_lab.report.stats import ADJUSTMENTS
from mats_lab.report.stores import complete_machines
from mats_lab.report.summarise import Summary, compare, config_labels, summarise
from mats_lab.report.trial_tables import TrialTableError

__all__ = ["FORMATS", "Report", "ReportError", "ReportOptions", "parse_formats", "run_report"]

FORMATS = ("md", "csv", "tex", "html")


class ReportError(ValueError):
    """Nothing to report, or an argument that cannot be used."""


@dataclass
class ReportOptions:
    out: Path = Path("reports")
    formats: tuple[str, ...] = FORMATS
    baseline: str | None = None
    tokens: bool = True
    clip: Path | None = None
    tracking_uri: str | None = None
    storage: str | None = None
    use_mlflow: bool = True
    compare: bool = False
    command: str = "mats-lab report"
    alpha: float = 0.05  # level of the paired tests; intervals at 1 - alpha
    adjust: str = "none"  # correction for the number of tests (stats.ADJUSTMENTS)
    reference: Path | None = None  # an earlier report folder to compare this run with
    trials: tuple[Path, ...] = ()  # trial tables to report (pooled) instead of the stores

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ReportError(f"--alpha {self.alpha}: choose a level between 0 and 1, e.g. 0.05")
        if self.adjust not in ADJUSTMENTS:
            raise ReportError(
                f"--adjust {self.adjust}: choose one of {', '.join(ADJUSTMENTS)} (holm: "
                "family-wise error, bh: false discovery rate)"
            )
        if self.trials and self.compare:
            raise ReportError("--trials reports one study: leave out --compare")


@dataclass
class Report:
    name: str
    folder: Path
    summary: Summary
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""
    markdown: str = ""  # the main table, as printed
    html: str = ""
    stats_markdown: str = ""  # the paired comparison (empty: no accuracy column)
    stats_html: str = ""
    effects_markdown: str = ""  # each factor against its control (empty: fewer than 2 factors)
    effects_html: str = ""


def parse_formats(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ReportError(f"--format {text!r}: choose from {','.join(FORMATS)}")
    return chosen


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "study"


# -- finding and reading -----------------------------------------------------------------------


def find_sources(arguments: list[str], options: ReportOptions, base: Path) -> list[StudySource]:
    if options.trials and len(arguments) != 1:
        raise ReportError(
            "--trials: name exactly one study file, the study the trial tables belong to "
            "(e.g. mats-lab report studies/keep_ratio_factorial_pooled.yaml --trials A --trials B)"
        )
    if arguments:
        try:
            return [resolve(a, base) for a in arguments]
        except (SourceError, ValueError) as exc:
            raise ReportError(str(exc)) from None
    found = discover(base)
    if options.tracking_uri and options.use_mlflow:
        names = {s.name for s in found}
        try:
            remote = mlflow_experiments(options.tracking_uri)
        except Exception as exc:  # noqa: BLE001
            raise ReportError(f"MLflow at {options.tracking_uri}: {exc}") from None
        found += [StudySource(name=n) for n in remote if n not in names]
    if not found:
        raise ReportError(
            f"no study with results under {base / 'studies'}"
            + ("" if options.tracking_uri else " (name a study, or give --tracking-uri)")
        )
    return found


def load(source: StudySource, options: ReportOptions) -> StudyData:
    try:
        if options.trials:
            return collect_tables(source, list(options.trials))
        return collect(
            source,
            tracking_uri=options.tracking_uri,
            storage_url=options.storage,
            use_mlflow=options.use_mlflow,
        )
    except (LookupError, TrialTableError) as exc:
        raise ReportError(str(exc)) from None


# -- one study ---------------------------------------------------------------------------------


def _summary(data: StudyData, options: ReportOptions, lenient: bool) -> Summary:
    # the option wins over the study file's ``baseline``; the report says which one it used
    requested = options.baseline or data.baseline
    named_by = "--baseline" if options.baseline else "the study file's `baseline`"

    def run(baseline: str | None) -> Summary:
        return summarise(
            data.trials,
            data.variables,
            bundles=data.bundles,
            stage_names=data.stage_names,
            baseline=baseline,
            baseline_named_by=named_by,
            study=data.name,
            alpha=options.alpha,
            adjust=options.adjust,
        )

    try:
        return run(requested)
    except ValueError as exc:
        if not lenient:
            raise ReportError(f"study {data.name}: {exc}") from None
        data.notes.append(f"{exc}; the conventional baseline is used")
        return run(None)


def _curve_metrics(data: StudyData) -> dict[str, str]:
    columns = [c.removeprefix("metrics.") for c in data.metric_columns]
    losses = [c for c in columns if c.endswith("/train/loss")]
    last = f"{data.stage_names[-1]}/train/loss" if data.stage_names else ""
    loss = (
        last
        if last in losses
        else ("finetune/train/loss" if "finetune/train/loss" in losses else "")
    )
    loss = loss or (losses[-1] if losses else "")
    chosen = {"val/acc/top1": "val top-1 (%)"}
    if loss:
        chosen[loss] = f"{loss.split('/')[0]} training loss"
    return chosen


def write_figures(
    data: StudyData | None, summary: Summary, folder: Path, bundles: list[str]
) -> tuple[list[Path], list[str]]:
    """Every figure of the summary (and, with the study's data, its training curves)."""
    files: list[Path] = []
    notes: list[str] = []
    title = summary.study
    bars = (
        f"error bars: {stats_table.level_text(summary.alpha)} CI of the mean over seeds, "
        f"{figures.CLIP_NOTE}"
    )
    points = figures.gmacs_points(summary)
    if len(points):
        x_title, y_title = figures.axis_titles(summary)
        fig = plots.draw_gmacs(points, x_title, y_title, f"{title}: accuracy against cost", bars)
        files += plots.save(fig, folder / "acc_vs_gmacs")
    else:
        notes.append("no accuracy-against-GMACs figure: the trials recorded no GMACs")
    x_name, lines, held = figures.ratio_lines(summary, bundles)
    if x_name is not None and len(lines):
        y_title = figures.axis_titles(summary)[1]
        fixed = ", ".join(f"{k}={v}" for k, v in held.items())
        name = f"{title}: accuracy against {x_name.replace('_', ' ')}" + (
            f"\n(best {fixed})" if fixed else ""
        )
        fig = plots.draw_ratio_lines(lines, x_name, y_title, name, bars)
        files += plots.save(fig, folder / f"acc_vs_{x_name}")
    if data is not None:
        chosen = figures.curve_configs(summary)
        labels = config_labels(data.trials, data.variables)
        done = data.trials[(data.trials["state"] == "COMPLETE") & labels.isin(chosen)]
        by_trial = {int(t): str(labels[i]) for i, t in zip(done.index, done["trial"], strict=True)}
        by_trial = dict(sorted(by_trial.items(), key=lambda kv: chosen.index(kv[1])))
        metrics = _curve_metrics(data)
        frame = figures.curve_frame(curves(data, list(by_trial), list(metrics)), by_trial)
        if len(frame):
            fig = plots.draw_curves(
                frame, metrics, f"{title}: training curves (mean ± std over seeds)"
            )
            files += plots.save(fig, folder / "curves")
        else:
            why = (
                "trial tables carry no per-epoch history"
                if data.source == "tables"
                else "the trials recorded no per-epoch history"
            )
            notes.append(f"no training curves: {why}")
    return files, notes


def _blocks(
    report: Report,
    options: ReportOptions,
    data: StudyData | None,
    figs: list[Path],
    tokens: tuple[Path | None, str] | None,
) -> list[pages.Block]:
    return index.index_blocks(
        report.summary,
        markdown=report.markdown,
        html=report.html,
        stats=(report.stats_markdown, report.stats_html),
        effects=(report.effects_markdown, report.effects_html),
        notes=report.notes,
        command=options.command,
        formats=options.formats,
        data=data,
        figs=figs,
        tokens=tokens,
    )


def write_tables(report: Report, options: ReportOptions, caption: str) -> list[Path]:
    """``results.<format>`` and ``stats.<format>`` (the paired comparison, when the table has
    accuracy columns) for every format asked for (each table rendered once)."""
    summary, folder = report.summary, report.folder
    folder.mkdir(parents=True, exist_ok=True)
    report.markdown = tables.to_markdown(summary)
    report.html = tables.to_html(summary)
    label = f"tab:{_safe(summary.study)}"
    render = {
        "md": lambda: report.markdown,
        "csv": lambda: tables.to_csv(summary),
        "tex": lambda: tables.to_latex(summary, caption, label),
        "html": lambda: pages.page_html(summary.study, [pages.Block("table", html=report.html)]),
    }
    files = []
    for fmt in options.formats:
        path = folder / f"results.{fmt}"
        path.write_text(render[fmt]())
        files.append(path)
    headers, rows = stats_table.grid(summary)
    if not rows:
        return files
    level = stats_table.level_text(summary.alpha)
    stats_caption = (
        f"{summary.study}: per configuration mean ± std and {level} t interval over seeds; "
        f"against the baseline the difference paired by seed, its {level} interval and the "
        f"paired t-test ({stats_table.verdict_rule(summary)})."
    )
    report.stats_markdown, report.stats_html, written = _write_grid(
        GridFiles("stats", "statistics", headers, rows, stats_caption, label),
        stats_table.frame(summary).to_csv(index=False),
        report,
        options,
    )
    files += written
    headers, rows = stats_table.effects_grid(summary)
    if rows:  # two factors or more: each against its control, the others held
        effects_caption = (
            f"{summary.study}: the effect of each factor with the others held: every "
            "configuration minus its control (the same but for one factor, at the baseline's "
            f"level), paired by seed, its {level} interval and the paired t-test "
            f"({stats_table.verdict_rule(summary, 'lines')})."
        )
        report.effects_markdown, report.effects_html, written = _write_grid(
            GridFiles("effects", "effects", headers, rows, effects_caption, label),
            summary.effects.to_csv(index=False),
            report,
            options,
        )
        files += written
    return files


@dataclass(frozen=True)
class GridFiles:
    """A table of display cells written as ``<name>.<format>``."""

    name: str  # file stem, HTML uuid and LaTeX label suffix
    title: str  # the HTML page's title after the study's name
    headers: list[str]
    rows: list[list[tables.Cell]]
    caption: str  # LaTeX
    label: str  # the study's LaTeX label


def _write_grid(
    grid: GridFiles, csv_text: str, report: Report, options: ReportOptions
) -> tuple[str, str, list[Path]]:
    """``(markdown, html, files)``: the table in every format asked for (rendered once)."""
    markdown = tables.markdown_table(grid.headers, grid.rows)
    html = tables.html_table(grid.headers, grid.rows, [""] * len(grid.rows), uuid=grid.name)
    render = {
        "md": lambda: markdown,
        "csv": lambda: csv_text,
        "tex": lambda: tables.latex_table(
            grid.headers, grid.rows, grid.caption, f"{grid.label}-{grid.name}"
        ),
        "html": lambda: pages.page_html(
            f"{report.summary.study}: {grid.title}", [pages.Block("table", html=html)]
        ),
    }
    files = []
    for fmt in options.formats:
        path = report.folder / f"{grid.name}.{fmt}"
        path.write_text(render[fmt]())
        files.append(path)
    return markdown, html, files


def _write_pages(report: Report, blocks: list[pages.Block], options: ReportOptions) -> None:
    index = report.folder / "index.md"
    index.write_text(pages.page_markdown(blocks))
    report.files.append(index)
    if "html" in options.formats:
        page = report.folder / "index.html"
        page.write_text(pages.page_html(f"Study {report.summary.study}", blocks))
        report.files.append(page)


def write_study(data: StudyData, options: ReportOptions, lenient: bool = False) -> Report:
    """Everything for one study under ``options.out / <study>``."""
    summary = _summary(data, options, lenient)
    folder = options.out / _safe(data.name)
    report = Report(data.name, folder, summary, notes=list(data.notes), source=data.source)
    caption = f"{data.name}: " + index.table_caption(summary)
    report.files += write_tables(report, options, caption)
    report.notes += index.seed_notes(summary)
    report.notes += index.machine_notes(complete_machines(data.trials))
    fit = pretraining_fit_note(data.trials, config_labels(data.trials, data.variables))
    report.notes += [fit] if fit else []
    trials_csv = folder / "trials.csv"
    # 12 significant digits: 0.81, not the float repr 0.8099999999999999
    data.trials.to_csv(trials_csv, index=False, float_format="%.12g")
    report.files.append(trials_csv)
    figs, notes = write_figures(data, summary, folder, data.bundles)
    report.files += figs
    report.notes += notes
    tokens: tuple[Path | None, str] | None = None
    if options.tokens:
        from mats_lab.report.tokens import token_picture

        tokens = token_picture(data, summary, folder / "tokens.png", options.clip)
        if tokens[0] is not None:
            report.files.append(tokens[0])
    _write_pages(report, _blocks(report, options, data, figs, tokens), options)
    return report


def write_compare(datas: list[StudyData], reports: list[Report], options: ReportOptions) -> Report:
    """One table (and figures) over several studies."""
    summary = compare([r.summary for r in reports])
    folder = options.out / ("compare-" + "-".join(_safe(d.name) for d in datas))[:120]
    study_notes = [f"study {r.name}: {n}" for r in reports for n in r.notes]
    report = Report(summary.study, folder, summary, notes=study_notes)
    caption = f"{summary.study}: " + index.table_caption(summary)
    report.files += write_tables(report, options, caption)
    bundles = sorted({b for d in datas for b in d.bundles})
    figs, notes = write_figures(None, summary, folder, bundles)
    report.files += figs
    report.notes += notes
    _write_pages(report, _blocks(report, options, None, figs, None), options)
    return report


def write_reference(report: Report, reference: Path) -> str:
    """Compare the study's table with the same study's ``results.csv`` under ``reference``;
    writes ``reference.md`` beside the report and returns the text for the terminal."""
    found = find_reference(reference, _safe(report.name))
    if found is None:
        return f"no reference for study {report.name} under {reference}"
    if found.resolve() == (report.folder / "results.csv").resolve():
        return f"the reference {found} is this report itself: nothing to compare"
    run = pd.read_csv(io.StringIO(tables.to_csv(report.summary)))
    frame = compare_with_reference(run, pd.read_csv(found))
    text = reference_markdown(frame, found.parent)
    trials = [path / "trials.csv" for path in (report.folder, found.parent)]
    run_trials, ref_trials = (pd.read_csv(t) if t.is_file() else None for t in trials)
    where = machine_line(run_trials, ref_trials)
    if where:
        text += f"\n{where}\n"
    theirs = found.parent / "stats.csv"
    if theirs.is_file():  # the reference has statistics too: did the verdicts hold?
        their_stats = pd.read_csv(theirs)
        verdicts = compare_verdicts(stats_table.frame(report.summary), their_stats)
        text += "\n" + verdicts_markdown(verdicts, found.parent)
        if ("p_raw" in their_stats.columns) != (report.summary.adjust != "none"):
            text += (
                "\nNot on the same footing: one of the two reports adjusts its p-values for the "
                "number of tests (`--adjust`; its stats.csv has a `p_raw` column) and the other "
                "does not, so a verdict may differ for that reason alone.\n"
            )
    their_effects = found.parent / "effects.csv"
    if their_effects.is_file() and not report.summary.effects.empty:
        effects = compare_verdicts(
            report.summary.effects, pd.read_csv(their_effects), name=effect_line
        )
        what = "Effects of each factor, the others held"
        text += "\n" + verdicts_markdown(effects, found.parent, what)
    path = report.folder / "reference.md"
    path.write_text(text)
    report.files.append(path)
    return text


def terminal_text(report: Report) -> str:
    s = report.summary
    lines = [f"study {s.study}: {index.counts_text(s)}"]
    if report.source:
        where = {"mlflow": "MLflow", "tables": "trial tables"}.get(report.source)
        lines[0] += f" (from {where or 'the Optuna storage'})"
    lines += ["", report.markdown.rstrip(), ""]
    lines += [f"note: {n}" for n in report.notes]
    lines.append(f"wrote {report.folder}/ ({', '.join(p.name for p in report.files)})")
    return "\n".join(lines)


def run_report(
    arguments: list[str],
    options: ReportOptions,
    echo: Callable[[str], None] = print,
    base: Path | None = None,
) -> list[Report]:
    """Report every study named (or found); with ``compare`` also one table over all."""
    base = base or Path.cwd()
    sources = find_sources(arguments, options, base)
    lenient = len(sources) > 1
    datas, reports = [], []
    for source in sources:
        data = load(source, options)
        if data.trials.empty:
            echo(f"study {data.name}: no trials yet")
            continue
        report = write_study(data, options, lenient)
        datas.append(data)
        reports.append(report)
        if not options.compare:
            echo(terminal_text(report))
        if options.reference is not None:
            echo(write_reference(report, options.reference))
    if options.compare:
        if len(reports) < 2:
            raise ReportError("--compare needs two studies with trials or more")
        for report in reports:
            echo(f"wrote {report.folder}/")
        combined = write_compare(datas, reports, options)
        echo(terminal_text(combined))
        reports.append(combined)
    return reports
