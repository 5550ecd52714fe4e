"""Render a :class:`~mats_lab.report.summarise.Summary` table as Markdown, CSV, LaTeX
(booktabs) and HTML.

Every text format shows the same cells: ``mean ± std`` over seeds (no ``±`` for one seed), the
delta against the baseline in parentheses (accuracy in points, ``+1.2``; cost as a ratio,
``×0.48``), the best value of each column in bold. Accuracy is shown in percent with one
decimal, costs with three significant digits. The CSV keeps the raw numbers instead: accuracy
as fractions, ``.std`` the sample std, ``.n`` the seeds, ``.delta`` as above, ``.best`` flags.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import pandas as pd

from mats_lab.report.summarise import Column, Summary

__all__ = ["Cell", "fmt_number", "grid", "to_csv", "to_html", "to_latex", "to_markdown"]


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


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _text(value: object) -> str:
    return "" if _missing(value) else str(value)


def grid(summary: Summary) -> tuple[list[str], list[list[Cell]]]:
    """``(headers, rows)`` of display cells, shared by every text format."""
    t = summary.table
    config = summary.config_columns
    headers = [c.replace("_", " ") for c in config] + ["seeds"]
    show_excluded = "excluded" in t.columns and bool((t["excluded"] > 0).any())
    if show_excluded:
        headers.append("not complete")
    headers += [c.title for c in summary.columns]
    rows = []
    for label, row in t.iterrows():
        texts = [_text(row[name] if name in row.index else None) for name in config]
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
            if not _missing(mean) and not _missing(std) and row[f"{col.key}.n"] > 1:
                text += f" ± {_std(std, col, mean)}"
            delta = "" if bool(row["baseline"]) else _delta(row[f"{col.key}.delta"], col)
            best = str(label) in summary.best.get(col.key, [])
            cells.append(Cell(text, best=best, numeric=True, delta=delta))
        rows.append(cells)
    return headers, rows


def _joined(cell: Cell) -> str:
    return f"{cell.text} {cell.delta}".strip()


def to_markdown(summary: Summary) -> str:
    headers, rows = grid(summary)

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    def show(cell: Cell) -> str:
        if cell.best and cell.text:
            return esc(f"**{cell.text}** {cell.delta}".strip())
        return esc(_joined(cell))

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |"]
    lines.append(
        "|" + "|".join("---:" if c.numeric else "---" for c in (rows[0] if rows else [])) + "|"
    )
    if not rows:
        lines[-1] = "|" + "|".join("---" for _ in headers) + "|"
    lines += ["| " + " | ".join(show(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


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


def to_latex(summary: Summary, caption: str = "", label: str = "") -> str:
    """A ``table`` with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    headers, rows = grid(summary)
    spec = "".join("r" if c.numeric else "l" for c in rows[0]) if rows else "l" * len(headers)
    lines = [
        r"\begin{table}[t]",
        r"  \centering",
        r"  \small",
        f"  \\caption{{{tex_escape(caption)}}}" if caption else "",
        f"  \\label{{{label}}}" if label else "",
        f"  \\begin{{tabular}}{{{spec}}}",
        r"    \toprule",
        "    " + " & ".join(tex_escape(h) for h in headers) + r" \\",
        r"    \midrule",
    ]
    lines += ["    " + " & ".join(_tex_cell(c) for c in row) + r" \\" for row in rows]
    lines += [r"    \bottomrule", r"  \end{tabular}", r"\end{table}"]
    return "\n".join(line for line in lines if line) + "\n"


def to_html(summary: Summary) -> str:
    """A ``<table class="report">`` fragment."""
    headers, rows = grid(summary)
    out = ['<table class="report">', "  <thead><tr>"]
    out += [f"    <th>{html.escape(h)}</th>" for h in headers]
    out += ["  </tr></thead>", "  <tbody>"]
    t = summary.table
    for (_, row), cells in zip(t.iterrows(), rows, strict=True):
        klass = ' class="baseline"' if bool(row["baseline"]) else ""
        out.append(f"  <tr{klass}>")
        for cell in cells:
            text = html.escape(cell.text)
            if cell.best and cell.text:
                text = f"<strong>{text}</strong>"
            if cell.delta:
                text += f' <span class="delta">{html.escape(cell.delta)}</span>'
            align = ' class="num"' if cell.numeric else ""
            out.append(f"    <td{align}>{text}</td>")
        out.append("  </tr>")
    out += ["  </tbody>", "</table>"]
    return "\n".join(out) + "\n"


def to_csv(summary: Summary) -> str:
    """The raw numbers, one row per configuration."""
    t = summary.table.copy()
    for col in summary.columns:
        t[f"{col.key}.best"] = [str(i) in summary.best.get(col.key, []) for i in t.index]
    keep = [c for c in summary.config_columns if c in t.columns] + ["n", "excluded"]
    for col in summary.columns:
        keep += [f"{col.key}.{part}" for part in ("mean", "std", "n", "delta", "best")]
    keep += ["baseline", "pareto"]
    frame = t[[c for c in keep if c in t.columns]]
    frame = frame.rename(
        columns={
            f"{c.key}.{p}": f"{c.metric.removeprefix('metrics.') or c.key}.{p}"
            for c in summary.columns
            for p in ("mean", "std", "n", "delta", "best")
        }
    )
    return frame.to_csv(index=True)
