"""The statistics table of a report: per configuration and accuracy metric, the mean, std and
confidence interval over seeds, and against the baseline the paired difference by seed, its
interval, the paired t-test's p-value and the verdict (numbers from
:mod:`mats_lab.report.summarise`). :func:`frame` gives the raw numbers (for the CSV),
:func:`grid` the display cells that :mod:`mats_lab.report.tables` writes as Markdown, LaTeX and
HTML."""

from __future__ import annotations

import math

import pandas as pd

from mats_lab.report.cells import missing
from mats_lab.report.stats import ADJUST_TEXT
from mats_lab.report.summarise import Column, Summary
from mats_lab.report.tables import Cell, carries_verdict, fmt_number, fmt_p

__all__ = ["effects_grid", "frame", "grid", "level_text", "p_header", "verdict_rule"]

PARTS = (
    "n", "mean", "std", "ci_lo", "ci_hi", "pairs", "diff", "diff_lo", "diff_hi", "p", "seeds_80",
)  # fmt: skip
POWER_HEADER = "seeds for 80 % power"


def level_text(alpha: float) -> str:
    """``95 %`` for alpha 0.05."""
    return f"{100 * (1 - alpha):g} %"


def _columns(summary: Summary) -> list[Column]:
    return [c for c in summary.columns if carries_verdict(c)]


def p_header(summary: Summary) -> str:
    """The p-value column's header: ``p (paired t)``, or ``p (paired t, Holm)`` when the report
    adjusts for the number of tests."""
    named = ADJUST_TEXT.get(summary.adjust)
    return f"p (paired t, {named})" if named else "p (paired t)"


def verdict_rule(summary: Summary, lines: str = "rows") -> str:
    """How the verdicts were reached: ``verdict at alpha 0.05``, then, when the report adjusts,
    on which p-values (each metric's ``lines`` are one family) and what the intervals are."""
    text = f"verdict at alpha {summary.alpha:g}"
    named = ADJUST_TEXT.get(summary.adjust)
    if named:
        text += (
            f", on p-values {named}-adjusted over each metric's {lines} (the intervals are each "
            "at their level on their own, not simultaneous: one may leave out zero where the "
            "adjusted verdict is no evidence)"
        )
    return text


def frame(summary: Summary) -> pd.DataFrame:
    """One row per configuration and accuracy metric: ``configuration, metric`` then
    :data:`PARTS` (the metric's own unit: accuracy as a fraction; ``p`` adjusted when the
    report adjusts, then ``p_raw`` too) and ``verdict``."""
    t = summary.table
    parts = PARTS + (("p_raw",) if summary.adjust != "none" else ())
    rows = []
    for col in _columns(summary):
        for label, row in t.iterrows():
            record = {"configuration": str(label), "metric": col.metric.removeprefix("metrics.")}
            record |= {part: row.get(f"{col.key}.{part}") for part in parts}
            record["verdict"] = row.get(f"{col.key}.verdict")
            rows.append(record)
    return pd.DataFrame(rows, columns=["configuration", "metric", *parts, "verdict"])


def _num(value: float, col: Column, signed: bool = False) -> str:
    if missing(value):
        return "–"
    if col.kind == "acc":
        return f"{value * col.scale:+.1f}" if signed else f"{value * col.scale:.1f}"
    text = fmt_number(value)
    return f"+{text}" if signed and value > 0 else text


def seeds_text(value: float | None) -> str:
    """A :func:`~mats_lab.report.stats.seeds_for_power` figure as a cell: ``12``, ``>200``
    (no run of up to 200 seeds; a zero difference), or ``–``."""
    if value is None or missing(value):  # the None test narrows the type for mypy
        return "–"
    return ">200" if math.isinf(value) else str(int(value))


def _interval(low: float, high: float, col: Column, signed: bool = False) -> str:
    if missing(low) or missing(high):
        return "–"
    return f"[{_num(low, col, signed)}, {_num(high, col, signed)}]"


def grid(summary: Summary) -> tuple[list[str], list[list[Cell]]]:
    """``(headers, rows)`` of display cells (accuracy in percent, differences in points)."""
    level = level_text(summary.alpha)
    headers = [
        "configuration", "metric", "seeds", "mean ± std", f"{level} CI", "paired seeds",
        "difference", f"{level} CI of the difference", p_header(summary), POWER_HEADER, "verdict",
    ]  # fmt: skip
    rows = []
    t = summary.table
    for col in _columns(summary):
        for label, row in t.iterrows():
            get = row.get
            is_base = get(f"{col.key}.verdict") == "baseline"
            mean, std = get(f"{col.key}.mean"), get(f"{col.key}.std")
            spread = "" if std is None or math.isnan(std) else f" ± {_num(std, col)}"
            name = f"{label} (baseline)" if is_base else str(label)
            cells = [
                Cell(name),
                Cell(col.title),
                Cell(str(int(get(f"{col.key}.n", 0))), numeric=True),
                Cell(_num(mean, col) + spread, numeric=True),
                Cell(
                    _interval(get(f"{col.key}.ci_lo"), get(f"{col.key}.ci_hi"), col), numeric=True
                ),
            ]
            if is_base:
                cells += [Cell("", numeric=True)] * 5 + [Cell("baseline")]
            else:
                cells += [
                    Cell(str(int(get(f"{col.key}.pairs", 0))), numeric=True),
                    Cell(_num(get(f"{col.key}.diff"), col, signed=True), numeric=True),
                    Cell(
                        _interval(
                            get(f"{col.key}.diff_lo"), get(f"{col.key}.diff_hi"), col, signed=True
                        ),
                        numeric=True,
                    ),
                    Cell(fmt_p(get(f"{col.key}.p")), numeric=True),
                    Cell(seeds_text(get(f"{col.key}.seeds_80")), numeric=True),
                    Cell(str(get(f"{col.key}.verdict", ""))),
                ]
            rows.append(cells)
    return headers, rows


def effects_grid(summary: Summary) -> tuple[list[str], list[list[Cell]]]:
    """``(headers, rows)`` of the effects table (:mod:`mats_lab.report.effects`): per factor,
    configuration and accuracy metric the paired difference against its control, in points."""
    level = level_text(summary.alpha)
    headers = [
        "factor", "change", "others held at", "metric", "paired seeds", "difference",
        f"{level} CI of the difference", p_header(summary), POWER_HEADER, "verdict",
    ]  # fmt: skip
    by_metric = {c.metric.removeprefix("metrics."): c for c in _columns(summary)}
    rows = []
    for line in summary.effects.itertuples(index=False):
        col = by_metric.get(line.metric)
        if col is None:
            continue
        rows.append(
            [
                Cell(line.factor),
                Cell(line.change),
                Cell(line.held),
                Cell(col.title),
                Cell(str(int(line.pairs)), numeric=True),
                Cell(_num(line.diff, col, signed=True), numeric=True),
                Cell(_interval(line.diff_lo, line.diff_hi, col, signed=True), numeric=True),
                Cell(fmt_p(line.p), numeric=True),
                Cell(seeds_text(line.seeds_80), numeric=True),
                Cell(str(line.verdict)),
            ]
        )
    return headers, rows
