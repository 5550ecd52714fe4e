"""Render a :class:`~mats_lab.report.summarise.Summary` table as Markdown, CSV, LaTeX
(booktabs) and HTML, through pandas' own writers (``DataFrame.to_markdown``,
``Styler.to_latex``, ``Styler.to_html``, ``DataFrame.to_csv``).

Every text format shows the same cells: ``mean ± std`` over seeds (no ``±`` for one seed), the
delta of the means against the baseline in parentheses (accuracy in points, ``+1.2``; cost as a
ratio, ``×0.48``), the best value of each column in bold (the rule of
:mod:`mats_lab.report.summarise`: only where the paired test supports it), and after every
accuracy column its verdict against the baseline (``better (p=0.004)``, ``no evidence
(p=0.37)``, ``n<2``). Accuracy is shown in percent with one decimal, costs with three
significant digits. The CSV keeps the raw numbers instead: accuracy as fractions, ``.std`` the
sample std, ``.n`` the seeds, ``.ci_lo``/``.ci_hi`` the interval of the mean, ``.delta`` as
above, ``.pairs``/``.diff``/``.diff_lo``/``.diff_hi``/``.p``/``.verdict`` the paired
comparison (difference in the metric's own unit), ``.best`` flags.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mats_lab.report.cells import cell_text, missing
from mats_lab.report.stats import NO_TEST
from mats_lab.report.summarise import Column, Summary

__all__ = [
    "Cell",
    "fmt_number",
    "fmt_p",
    "grid",
    "html_table",
    "latex_table",
    "markdown_table",
    "to_csv",
    "to_html",
    "to_latex",
    "to_markdown",
]


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False
    numeric: bool = False
    delta: str = ""  # the parenthesised delta, kept apart for LaTeX's smaller type


def fmt_number(value: float, col: Column | None = None) -> str:
    """Accuracy: percent with one decimal; other numbers: three significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if col is not None and col.kind == "acc":
        return f"{value * col.scale:.1f}"
    if value == 0:
        return "0"
    decimals = max(0, min(3, 2 - math.floor(math.log10(abs(value)))))
    return f"{value:.{decimals}f}"


def _std(value: float, col: Column, mean: float) -> str:
    if col.kind == "acc":
        return f"{value * col.scale:.1f}"
    if mean == 0 or math.isnan(mean):
        return fmt_number(value)
    decimals = max(0, min(3, 2 - math.floor(math.log10(abs(mean)))))
    return f"{value:.{decimals}f}"


def _delta(value: float, col: Column) -> str:
    if value is None or math.isnan(value) or math.isinf(value):
        return ""
    if col.kind == "acc":
        return f"({value:+.1f})"
    return f"(×{value:.2f})"


def carries_verdict(col: Column) -> bool:
    """Accuracy columns carry a verdict against the baseline; costs keep their ratio."""
    return col.kind == "acc"


def verdict_title(col: Column) -> str:
    return f"vs baseline ({col.title.removesuffix(' (%)')})"


def fmt_p(p: float) -> str:
    """A p-value: two significant digits, ``<0.001`` below that."""
    if missing(p) or math.isnan(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def verdict_text(row: pd.Series, col: Column) -> str:
    """``better (p=0.003)``, ``no evidence (p=0.37)``, ``n<2``; empty on the baseline row."""
    word = row.get(f"{col.key}.verdict")
    if missing(word) or word == "baseline":
        return ""
    if word == NO_TEST:
        return NO_TEST
    p = fmt_p(row[f"{col.key}.p"])
    return f"{word} (p{p})" if p.startswith("<") else f"{word} (p={p})"


def grid(summary: Summary) -> tuple[list[str], list[list[Cell]]]:
    """``(headers, rows)`` of display cells, shared by every text format."""
    t = summary.table
    config = summary.config_columns
    headers = [c.replace("_", " ") for c in config] + ["seeds"]
    show_excluded = "excluded" in t.columns and bool((t["excluded"] > 0).any())
    if show_excluded:
        headers.append("not complete")
    for col in summary.columns:
        headers.append(col.title)
        if carries_verdict(col):
            headers.append(verdict_title(col))
    rows = []
    for label, row in t.iterrows():
        texts = [cell_text(row[name] if name in row.index else None) for name in config]
        if bool(row["baseline"]):  # marked on its first parameter (a study name is not one)
            mark = next(
                (
                    i
                    for i, (n, t) in enumerate(zip(config, texts, strict=True))
                    if t and n != "study"
                ),
                0,
            )
            texts[mark] = f"{texts[mark]} (baseline)".strip()
        cells = [Cell(text) for text in texts]
        cells.append(Cell(str(int(row["n"])), numeric=True))
        if show_excluded:
            cells.append(Cell(str(int(row["excluded"])) if row["excluded"] else "", numeric=True))
        for col in summary.columns:
            mean, std = row[f"{col.key}.mean"], row[f"{col.key}.std"]
            text = fmt_number(mean, col)
            if not missing(mean) and not missing(std) and row[f"{col.key}.n"] > 1:
                text += f" ± {_std(std, col, mean)}"
            delta = "" if bool(row["baseline"]) else _delta(row[f"{col.key}.delta"], col)
            best = str(label) in summary.best.get(col.key, [])
            cells.append(Cell(text, best=best, numeric=True, delta=delta))
            if carries_verdict(col):
                cells.append(Cell(verdict_text(row, col)))
        rows.append(cells)
    return headers, rows


def _joined(cell: Cell) -> str:
    return f"{cell.text} {cell.delta}".strip()


def markdown_table(headers: list[str], rows: list[list[Cell]]) -> str:
    """A pipe table written by ``DataFrame.to_markdown`` (tabulate); best cells in bold."""

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    def show(cell: Cell) -> str:
        if cell.best and cell.text:
            return esc(f"**{cell.text}** {cell.delta}".strip())
        return esc(_joined(cell))

    frame = pd.DataFrame(
        [[show(c) for c in row] for row in rows], columns=pd.Index([esc(h) for h in headers])
    )
    align = ["right" if c.numeric else "left" for c in rows[0]] if rows else None
    return frame.to_markdown(index=False, disable_numparse=True, colalign=align) + "\n"


def to_markdown(summary: Summary) -> str:
    headers, rows = grid(summary)
    return markdown_table(headers, rows)


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"$\pm$",
    "×": r"$\times$",
}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def _tex_cell(cell: Cell) -> str:
    mean, sep, std = cell.text.partition(" ± ")
    text = tex_escape(mean)
    if cell.best and mean:
        text = rf"\textbf{{{text}}}"
    if sep:
        text += rf" $\pm$ {tex_escape(std)}"
    if cell.delta:
        text += rf" {{\scriptsize {tex_escape(cell.delta)}}}"
    return text


def _styler(headers: list[str], rows: list[list[str]], uuid: str = "results") -> Any:
    """A pandas ``Styler`` over ready-made cell strings (no index, no cell ids; the table's id
    ``T_<uuid>`` fixed, so the output repeats and two tables on one page differ)."""
    from pandas.io.formats.style import Styler

    frame = pd.DataFrame(rows, columns=pd.Index(headers))
    return Styler(frame, uuid=uuid, cell_ids=False).hide(axis="index")


def latex_table(
    headers: list[str], rows: list[list[Cell]], caption: str = "", label: str = ""
) -> str:
    """A ``table`` with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), written by
    ``Styler.to_latex``; text columns left, numbers right."""
    spec = "".join("r" if c.numeric else "l" for c in rows[0]) if rows else "l" * len(headers)
    styler = _styler(
        [tex_escape(h) for h in headers], [[_tex_cell(c) for c in row] for row in rows]
    )
    text = styler.to_latex(
        column_format=spec,
        hrules=True,
        position="t",
        position_float="centering",
        caption=tex_escape(caption) if caption else None,
        label=label or None,
    )
    return text.replace("\\centering\n", "\\centering\n\\small\n", 1)


def html_table(
    headers: list[str], rows: list[list[Cell]], row_classes: list[str], uuid: str = "results"
) -> str:
    """A ``<table class="report">`` fragment written by ``Styler.to_html``: every cell has the
    class ``num`` or ``text`` plus its row's class (``baseline``), best cells in ``<strong>``,
    deltas in ``<span class="delta">``; ``uuid`` names the table (id ``T_<uuid>``)."""
    texts, classes = [], []
    for cells, klass in zip(rows, row_classes, strict=True):
        line, kinds = [], []
        for cell in cells:
            text = html.escape(cell.text)
            if cell.best and cell.text:
                text = f"<strong>{text}</strong>"
            if cell.delta:
                text += f' <span class="delta">{html.escape(cell.delta)}</span>'
            line.append(text)
            kinds.append(" ".join(k for k in ("num" if cell.numeric else "text", klass) if k))
        texts.append(line)
        classes.append(kinds)
    styler = _styler(headers, texts, uuid).format_index(escape="html", axis=1)
    if rows:
        styler = styler.set_td_classes(pd.DataFrame(classes, columns=pd.Index(headers)))
    return str(styler.to_html(table_attributes='class="report"'))


def to_latex(summary: Summary, caption: str = "", label: str = "") -> str:
    """The report's table as LaTeX (see :func:`latex_table`)."""
    headers, rows = grid(summary)
    return latex_table(headers, rows, caption, label)


def to_html(summary: Summary) -> str:
    """The report's table as HTML (see :func:`html_table`); the baseline row's cells have the
    class ``baseline``."""
    headers, rows = grid(summary)
    marks = ["baseline" if bool(b) else "" for b in summary.table["baseline"]] if rows else []
    return html_table(headers, rows, marks)


#: Per metric in the CSV, after its name: see :mod:`mats_lab.report.summarise`.
CSV_PARTS = (
    "mean", "std", "n", "ci_lo", "ci_hi", "delta", "pairs", "diff", "diff_lo", "diff_hi", "p",
    "verdict", "best",
)  # fmt: skip


def to_csv(summary: Summary) -> str:
    """The raw numbers, one row per configuration."""
    t = summary.table.copy()
    for col in summary.columns:
        t[f"{col.key}.best"] = [str(i) in summary.best.get(col.key, []) for i in t.index]
    keep = [c for c in summary.config_columns if c in t.columns] + ["n", "excluded"]
    for col in summary.columns:
        keep += [f"{col.key}.{part}" for part in CSV_PARTS]
    keep += ["baseline", "pareto"]
    frame = t[[c for c in keep if c in t.columns]]
    frame = frame.rename(
        columns={
            f"{c.key}.{p}": f"{c.metric.removeprefix('metrics.') or c.key}.{p}"
            for c in summary.columns
            for p in CSV_PARTS
        }
    )
    return frame.to_csv(index=True)
