"""Every output of the report on a hand-made study: the table in Markdown, CSV, LaTeX and
HTML, the index page, and the figures, whose plotted points are checked against the data
computed apart from the drawing (as Optuna's plot tests do)."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from test_report_summarise import STANDARD, study

from mats_lab.report import figures, pages, plots, tables


class Cells(HTMLParser):
    """Rows of cell texts, and the texts inside <strong>."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.strong: list[str] = []
        self.classes: list[str | None] = []
        self.cell_classes: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in_strong = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
            self.classes.append(dict(attrs).get("class"))
            self.cell_classes.append([])
        elif tag in ("td", "th"):
            self._cell = []
            self.cell_classes[-1].append(dict(attrs).get("class") or "")
        elif tag == "strong":
            self._in_strong = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "strong":
            self._in_strong = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_strong:
            self.strong.append(data)


def markdown_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [
        [c.strip() for c in line.strip("|").split(" | ")] for line in lines if "---" not in line
    ]


@pytest.fixture(scope="module")
def summary():
    return study(STANDARD)


def test_markdown_cells_mean_std_delta_best_and_baseline(summary):
    rows = markdown_rows(tables.to_markdown(summary))
    header, body = rows[0], {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert header[:4] == ["method", "recipe", "keep ratio", "seeds"]
    assert "test top-1 (%)" in header and "fine-tune GMACs/view" in header
    assert "not complete" not in header  # every trial completed
    assert list(body) == ["videomae (baseline)", "mats-0.6", "mats-0.3"]
    assert body["videomae (baseline)"]["test top-1 (%)"] == "62.0 ± 2.8"  # no delta to itself
    # highest mean, but not bold: the paired test finds no evidence against the baseline
    assert body["mats-0.6"]["test top-1 (%)"] == "69.0 ± 2.6 (+7.0)"  # delta in points
    assert body["mats-0.6"]["vs baseline (test top-1)"] == "no evidence (p=0.37)"
    assert body["mats-0.3"]["test top-1 (%)"] == "55.0 (-7.0)"  # one seed: no ±
    assert body["mats-0.3"]["vs baseline (test top-1)"] == "n<2"
    assert body["videomae (baseline)"]["vs baseline (test top-1)"] == ""
    assert body["mats-0.3"]["fine-tune GMACs/view"] == "3.00 (×0.30)"  # cost: a ratio; 1 seed
    assert body["mats-0.6"]["fine-tune GMACs/view"] == "**6.00 ± 0.00** (×0.60)"  # exact
    assert "vs baseline (fine-tune GMACs/view)" not in header  # costs carry no verdict
    assert body["mats-0.6"]["seeds"] == "3"


def test_csv_keeps_the_raw_numbers(summary):
    frame = pd.read_csv(io.StringIO(tables.to_csv(summary)), index_col=0)
    assert list(frame.index) == ["videomae", "mats-0.6", "mats-0.3"]
    assert frame.loc["mats-0.6", "test/acc/top1.mean"] == pytest.approx(0.69)
    assert frame.loc["mats-0.6", "test/acc/top1.std"] == pytest.approx(
        np.std([0.7, 0.66, 0.71], ddof=1)
    )
    assert frame.loc["mats-0.6", "test/acc/top1.delta"] == pytest.approx(7.0)
    assert frame.loc["mats-0.3", "test_gmacs.delta"] == pytest.approx(0.3)
    assert frame["test/acc/top1.best"].tolist() == [False, False, False]
    assert frame["test_gmacs.best"].tolist() == [False, True, False]
    assert frame["test/acc/top1.verdict"].tolist() == ["baseline", "no evidence", "n<2"]
    assert frame.loc["mats-0.6", "test/acc/top1.diff"] == pytest.approx(0.06)  # seeds 0, 1
    assert frame.loc["mats-0.6", "test/acc/top1.pairs"] == 2
    assert frame.loc["mats-0.6", "test/acc/top1.p"] == pytest.approx(0.3743, abs=1e-4)
    assert frame["baseline"].tolist() == [True, False, False]
    assert frame["pareto"].tolist() == [False, True, True]
    assert frame.loc["mats-0.3", "test/acc/top1.n"] == 1


def test_latex_is_a_booktabs_table(summary):
    tex = tables.to_latex(summary, caption="kr: mean ± std, 50% of tokens", label="tab:kr")
    lines = tex.splitlines()
    assert lines[0] == r"\begin{table}[t]" and lines[-1] == r"\end{table}"
    assert [line.strip() for line in lines if "rule" in line] == [
        r"\toprule",
        r"\midrule",
        r"\bottomrule",
    ]
    assert r"\caption{kr: mean $\pm$ std, 50\% of tokens}" in tex and r"\label{tab:kr}" in tex
    body = [line for line in lines if line.endswith(r"\\")][1:]  # after the header row
    assert len(body) == 3 and all(line.count(" & ") == lines[7].count(" & ") for line in body)
    assert r"69.0 $\pm$ 2.6 {\scriptsize (+7.0)}" in body[1]
    assert r"\textbf{6.00} $\pm$ 0.00 {\scriptsize ($\times$0.60)}" in body[1]
    assert r"{\scriptsize ($\times$0.30)}" in body[2]
    assert r"n\textless{}2" in body[2]  # the verdict, escaped
    assert r"\begin{tabular}{lllr" in tex  # text columns left, numbers right
    assert tables.tex_escape("a_b & #1 {x} ~") == r"a\_b \& \#1 \{x\} \textasciitilde{}"


def test_html_table_marks_best_and_baseline(summary):
    parser = Cells()
    parser.feed(tables.to_html(summary))
    header, *rows = parser.rows
    assert header[0] == "method" and len(rows) == 3
    # every cell of the baseline row, and only those, has the class "baseline"
    assert [all("baseline" in k for k in row) for row in parser.cell_classes[1:]] == [
        True,
        False,
        False,
    ]
    assert not any("baseline" in k for row in parser.cell_classes[2:] for k in row)
    assert rows[1][header.index("test top-1 (%)")] == "69.0 ± 2.6 (+7.0)"
    assert rows[1][header.index("vs baseline (test top-1)")] == "no evidence (p=0.37)"
    # bold: the costs mats-0.6 beats in every pair (pre-train, fine-tune, memory, throughput)
    assert parser.strong == ["1.00 ± 0.00", "6.00 ± 0.00", "60.0 ± 0.0", "83.3 ± 0.0"]
    escaped = tables.to_html(study([t for t in STANDARD]))
    assert "<script" not in escaped


def test_index_page_in_markdown_and_html():
    blocks = [
        pages.Block("h1", "Study kr"),
        pages.Block("p", "Produced by `mats-lab report` ([csv](results.csv))."),
        pages.Block(
            "table", markdown="| a |\n|---|\n| 1 |\n", html="<table><tr><td>1</td></tr></table>"
        ),
        pages.Block("image", "acc_vs_gmacs.png", alt="accuracy"),
        pages.Block("list", items=["note <1>"]),
    ]
    md = pages.page_markdown(blocks)
    assert (
        md.startswith("# Study kr\n")
        and "![accuracy](acc_vs_gmacs.png)" in md
        and "- note <1>" in md
    )
    page = pages.page_html("kr", blocks)
    assert page.startswith("<!DOCTYPE html>") and '<img src="acc_vs_gmacs.png"' in page
    assert "<code>mats-lab report</code>" in page and '<a href="results.csv">csv</a>' in page
    assert "note &lt;1&gt;" in page
    excluded = pd.DataFrame({"trial": [3], "error": ["a | b\nc"]})
    assert "a \\| b c" in pages.frame_markdown(excluded)


# -- figures: data first, then what was drawn ------------------------------------------------


def test_gmacs_points_and_pareto_front_data(summary):
    points = figures.gmacs_points(summary)
    assert points["label"].tolist() == ["mats-0.3", "mats-0.6", "videomae"]  # by GMACs
    assert points["x"].tolist() == pytest.approx([3.0, 6.0, 10.0])
    assert points["y"].tolist() == pytest.approx([55.0, 69.0, 62.0])
    assert points["pareto"].tolist() == [True, True, False]
    assert points["baseline"].tolist() == [False, False, True]
    assert figures.axis_titles(summary) == ("fine-tune GMACs/view", "test top-1 (%)")


def test_gmacs_figure_draws_exactly_those_points(summary):
    points = figures.gmacs_points(summary)
    fig = plots.draw_gmacs(points, "GMACs", "top-1", "kr")
    ax = fig.axes[0]
    scatter = next(c for c in ax.collections if c.get_gid() == "configs")
    assert np.allclose(scatter.get_offsets(), points[["x", "y"]].to_numpy())
    front = next(line for line in ax.get_lines() if line.get_gid() == "front")
    assert np.allclose(front.get_xydata(), points[points["pareto"]][["x", "y"]].to_numpy())
    star = next(c for c in ax.collections if c.get_gid() == "baseline")
    assert np.allclose(star.get_offsets(), [[10.0, 62.0]])
    assert ax.get_xlabel() == "GMACs" and len(ax.texts) == 3  # few points: all named


def test_accuracy_against_keep_ratio_one_line_per_setting(summary):
    x_name, lines, held = figures.ratio_lines(summary, bundles=["method"])
    assert x_name == "keep_ratio" and held == {}
    assert lines["series"].tolist() == ["recipe=videomae", "recipe=mats", "recipe=mats"]
    assert lines["x"].tolist() == [1.0, 0.3, 0.6] and lines["y"].tolist() == pytest.approx(
        [62, 55, 69]
    )
    fig = plots.draw_ratio_lines(lines, x_name, "top-1", "kr")
    drawn = {
        line.get_gid(): line.get_xydata()
        for line in fig.axes[0].get_lines()
        if (line.get_gid() or "").startswith("series:")
    }
    assert list(drawn) == ["series:recipe=videomae", "series:recipe=mats"]
    for series, part in lines.groupby("series", sort=False):
        assert np.allclose(drawn[f"series:{series}"], part[["x", "y"]].to_numpy())


def test_lines_split_by_frame_budget_and_hold_other_numbers_at_the_best():
    table = pd.DataFrame(
        {
            "keep_ratio": [0.3, 0.6, 0.3, 0.6, 0.3, 0.6],
            "frame_budget": [4, 4, 8, 8, 8, 8],
            "candidate_ratio": [2.0, 2.0, 2.0, 2.0, 1.0, 1.0],
            "top1.mean": [0.5, 0.6, 0.7, 0.8, 0.1, 0.2],
            "top1.std": [np.nan] * 6,
            "top1.n": [1] * 6,
        },
        index=[f"c{i}" for i in range(6)],
    )
    summary = study(STANDARD)
    summary.table = table
    summary.config_columns = ["keep_ratio", "frame_budget", "candidate_ratio"]
    x_name, lines, held = figures.ratio_lines(summary)
    assert x_name == "keep_ratio" and held == {"candidate_ratio": 2.0}
    assert lines["series"].tolist() == ["frame_budget=4"] * 2 + ["frame_budget=8"] * 2
    assert lines["y"].tolist() == pytest.approx([50, 60, 70, 80])


def test_training_curves_mean_over_seeds():
    points = pd.DataFrame(
        [
            (0, "val/acc/top1", 1, 0.2), (0, "val/acc/top1", 2, 0.4),
            (1, "val/acc/top1", 1, 0.4), (1, "val/acc/top1", 2, 0.6),
            (1, "val/acc/top1", 2, 0.5),  # a resumed run logged epoch 2 twice: the larger counts
            (2, "val/acc/top1", 1, 0.9), (2, "finetune/train/loss", 1, 1.5),
            (9, "val/acc/top1", 1, 0.0),  # not a compared trial
        ],
        columns=["trial", "metric", "step", "value"],
    )  # fmt: skip
    curves = figures.curve_frame(points, {0: "videomae", 1: "videomae", 2: "mats-0.6"})
    val = curves[curves["metric"] == "val/acc/top1"]
    assert val["config"].tolist() == ["videomae", "videomae", "mats-0.6"]
    assert val["mean"].tolist() == pytest.approx([0.3, 0.5, 0.9])
    assert val["n"].tolist() == [2, 2, 1]
    titles = {"val/acc/top1": "val top-1 (%)", "finetune/train/loss": "loss"}
    fig = plots.draw_curves(curves, titles, "kr")
    assert [ax.get_ylabel() for ax in fig.axes] == ["val top-1 (%)", "loss"]
    line = next(li for li in fig.axes[0].get_lines() if li.get_gid() == "val/acc/top1:videomae")
    assert np.allclose(line.get_xydata(), [[1, 30.0], [2, 50.0]])


def test_curve_configs_baseline_first_then_best(summary):
    assert figures.curve_configs(summary) == ["videomae", "mats-0.6", "mats-0.3"]
    assert figures.curve_configs(summary, limit=2) == ["videomae", "mats-0.6"]


def test_figures_are_written_as_png_and_svg(tmp_path, summary):
    fig = plots.draw_gmacs(figures.gmacs_points(summary), "GMACs", "top-1", "kr")
    png, svg = plots.save(fig, tmp_path / "sub" / "acc_vs_gmacs")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and svg.read_text().lstrip().startswith(
        "<?xml"
    )


# -- error bars and legends ----------------------------------------------------------------


def _drawn(fig):
    """Render with Agg (as the report saves), so extents are final."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _bar_ends(ax) -> list[tuple[float, float, float]]:
    """``(x, low, high)`` of every vertical error bar drawn on ``ax``."""
    ends = []
    for container in ax.containers:
        for collection in container.lines[2]:
            for segment in collection.get_segments():
                ends.append((segment[0][0], segment[0][1], segment[1][1]))
    return sorted(ends)


def test_error_bars_are_the_confidence_interval_of_the_mean(summary):
    points = figures.gmacs_points(summary)
    table = summary.table
    assert points.set_index("label")["y_lo"].to_dict()["mats-0.6"] == pytest.approx(
        100 * table.loc["mats-0.6", "top1.ci_lo"]
    )
    fig = plots.draw_gmacs(points, "GMACs", "top-1", "kr", "error bars: 95 % CI")
    ends = _bar_ends(fig.axes[0])
    # mats-0.3 has one seed: a bar of no length; the others span their interval
    expected = [
        (3.0, 55.0, 55.0),
        (6.0, 100 * table.loc["mats-0.6", "top1.ci_lo"], 100 * table.loc["mats-0.6", "top1.ci_hi"]),
        (
            10.0,
            100 * table.loc["videomae", "top1.ci_lo"],
            100 * table.loc["videomae", "top1.ci_hi"],
        ),
    ]
    assert np.allclose(ends, expected)
    assert "95 % CI" in fig.axes[0].get_title()
    x_name, lines, _ = figures.ratio_lines(summary, bundles=["method"])
    fig = plots.draw_ratio_lines(lines, x_name, "top-1", "kr", "error bars: 95 % CI")
    drawn = _bar_ends(fig.axes[0])
    assert np.allclose(
        drawn,
        sorted(
            zip(
                lines["x"],
                lines["y_lo"].fillna(lines["y"]),
                lines["y_hi"].fillna(lines["y"]),
                strict=True,
            )
        ),
    )


def test_accuracy_intervals_are_clipped_to_what_an_accuracy_can_be(summary):
    """A t interval over 3 seeds can leave [0, 100] %; the drawn bar stops at the ends (the
    table keeps the interval as computed), and the figures' titles say so."""
    from dataclasses import replace

    table = summary.table.copy()
    table.loc["mats-0.6", "top1.ci_lo"] = -0.25
    table.loc["videomae", "top1.ci_hi"] = 1.4
    points = figures.gmacs_points(replace(summary, table=table)).set_index("label")
    assert points.loc["mats-0.6", "y_lo"] == 0.0
    assert points.loc["videomae", "y_hi"] == 100.0
    assert points.loc["videomae", "y_lo"] == pytest.approx(
        100 * table.loc["videomae", "top1.ci_lo"]
    )
    _, lines, _ = figures.ratio_lines(replace(summary, table=table), bundles=["method"])
    assert lines["y_lo"].min() >= 0.0 and lines["y_hi"].max() <= 100.0
    assert "clipped to 0-100 %" in figures.CLIP_NOTE


def test_names_of_points_in_one_column_do_not_overlap():
    """Three configurations at the same cost and almost the same accuracy (a factorial study's
    keep-ratio column): their names are stacked, none over another."""
    from matplotlib.text import Text

    points = (
        corner_points()
        .iloc[:4]
        .assign(
            x=[3.0, 3.0, 3.0, 9.0],
            y=[57.0, 57.5, 58.0, 70.0],
            label=["first", "second", "third", "b"],
        )
    )
    fig = plots.draw_gmacs(points, "GMACs", "top-1", "one column")
    renderer = _drawn(fig)
    names = [t for t in fig.axes[0].texts if t.get_text() in ("first", "second", "third")]
    assert len(names) == 3
    boxes = [Text.get_window_extent(t, renderer) for t in names]  # the text, not its leader
    for i, box in enumerate(boxes):
        for other in boxes[i + 1 :]:
            assert not box.overlaps(other), "two names drawn over each other"


def corner_points() -> pd.DataFrame:
    """Configurations in every corner of the plot, the baseline at the lower right (where the
    legend used to sit)."""
    xy = [(1.0, 90.0), (1.0, 10.0), (5.0, 50.0), (9.0, 90.0), (9.0, 10.0)]
    return pd.DataFrame(
        {
            "label": [f"c{i}" for i in range(len(xy))],
            "x": [x for x, _ in xy],
            "y": [y for _, y in xy],
            "y_std": [1.0] * len(xy),
            "y_lo": [y - 2 for _, y in xy],
            "y_hi": [y + 2 for _, y in xy],
            "n": [3] * len(xy),
            "pareto": [True, False, False, False, False],
            "baseline": [False, False, False, False, True],
            "study": ["kr"] * len(xy),
        }
    )


def _legend_covers_nothing(fig, xy: np.ndarray) -> None:
    renderer = _drawn(fig)
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent(renderer))  # outside every axes
    shown = fig.axes[0].transData.transform(xy)
    inside = [tuple(p) for p in shown if box.contains(*p)]
    assert inside == [], f"legend {box} covers data points {inside}"


def test_legends_never_cover_data():
    points = corner_points()
    fig = plots.draw_gmacs(points, "GMACs", "top-1", "corners")
    _legend_covers_nothing(fig, points[["x", "y"]].to_numpy())
    lines = points.assign(series=[f"s{i % 3}" for i in range(len(points))])
    fig = plots.draw_ratio_lines(lines, "keep_ratio", "top-1", "corners")
    _legend_covers_nothing(fig, lines[["x", "y"]].to_numpy())
    curves = pd.DataFrame(
        {
            "config": ["a", "a", "b", "b"],
            "metric": ["val/acc/top1"] * 4,
            "step": [1, 9, 1, 9],
            "mean": [0.1, 0.9, 0.9, 0.1],
            "std": [0.0] * 4,
            "n": [1] * 4,
        }
    )
    fig = plots.draw_curves(curves, {"val/acc/top1": "val top-1 (%)"}, "corners")
    _legend_covers_nothing(fig, curves[["step", "mean"]].to_numpy() * [1, 100])


def test_cells_and_headers_are_escaped_in_every_format():
    s = study(STANDARD)
    s.table = s.table.rename(columns={"recipe": "re<c>ipe"})
    s.config_columns = ["method", "re<c>ipe", "keep_ratio"]
    s.table["method"] = ["<script>x</script>", "a|b", "50%_&"]
    page = tables.to_html(s)
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "re&lt;c&gt;ipe" in page
    rows = markdown_rows(tables.to_markdown(s))
    assert rows[2][0] == "a\\|b" and len(rows[2]) == len(rows[0])  # the pipe stays in its cell
    tex = tables.to_latex(s)
    assert r"50\%\_\&" in tex and r"re\textless{}c\textgreater{}ipe" in tex
