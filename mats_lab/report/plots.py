"""Drawing: the frames of :mod:`mats_lab.report.figures` as matplotlib figures, saved as PNG
and SVG. Nothing is computed here; every function returns its ``Figure`` so a test can read
back what was drawn. matplotlib's Agg canvas, no pyplot (no global figure state).

Error bars on the accuracy figures are the confidence interval of the mean over seeds that
the summary computed (``y_lo``/``y_hi``; none for a single seed); the figure's title says so.
Legends sit below the axes (``fig.legend(loc="outside lower center")`` with the constrained
layout), so they never cover data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["draw_curves", "draw_gmacs", "draw_ratio_lines", "save"]

LABEL_LIMIT = 16  # configurations annotated by name when there are at most this many
COLUMN_PT = 40.0  # points this close across share a column of names (stacked, not overlapping)
LINE_PT = 9.5  # the height of a name (7-point text) plus a little space
FRONT_COLOR = "#c0392b"
BASE_COLOR = "#1f77b4"


def _figure(width: float, height: float, cols: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    axes = fig.subplots(1, cols, squeeze=False)[0]
    return fig, list(axes)


def _yerr(frame: pd.DataFrame) -> np.ndarray:
    """``(2, n)`` distances from ``y`` down to ``y_lo`` and up to ``y_hi`` (0 where unknown)."""
    y = frame["y"].to_numpy(float)
    low = np.nan_to_num(y - frame["y_lo"].to_numpy(float), nan=0.0)
    high = np.nan_to_num(frame["y_hi"].to_numpy(float) - y, nan=0.0)
    return np.vstack([np.maximum(low, 0.0), np.maximum(high, 0.0)])


def _label_offsets(ax: Any, x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    """Offsets in points of the names of the points ``(x, y)``: right of each point, and where
    points stand in one column (within :data:`COLUMN_PT` of each other across), stacked
    upwards from the lowest at least :data:`LINE_PT` apart, so no two names overlap there."""
    if not len(x):
        return []
    ax.autoscale_view()
    at = ax.transData.transform(np.column_stack([x, y])) * 72.0 / ax.figure.dpi  # points
    column = np.floor(at[:, 0] / COLUMN_PT)
    offsets = [(5.0, 0.0)] * len(x)
    last_column, last_top = None, -np.inf
    for i in np.lexsort((at[:, 1], column)):
        top = at[i, 1] if column[i] != last_column else max(at[i, 1], last_top + LINE_PT)
        offsets[i] = (5.0, float(top - at[i, 1]))
        last_column, last_top = column[i], top
    return offsets


def _legend_below(fig: Any, ax: Any, entries: int) -> None:
    """The legend of ``ax`` under the axes, outside them."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ncol = max(1, min(entries, 4))
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=7)


def _title(ax: Any, title: str, bars: str) -> None:
    ax.set_title(f"{title}\n({bars})" if bars else title, fontsize=10)


def save(fig: Any, stem: Path, svg: bool = True) -> list[Path]:
    """Write ``stem.png`` (and ``stem.svg``); returns the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png")]
    fig.savefig(paths[0], dpi=120)
    if svg:
        paths.append(stem.with_suffix(".svg"))
        fig.savefig(paths[1])
    return paths


def draw_gmacs(points: pd.DataFrame, x_title: str, y_title: str, title: str, bars: str = "") -> Any:
    """Accuracy against GMACs: every configuration (error bar: ``y_lo`` to ``y_hi``, what
    ``bars`` names in the title), the Pareto front as a red line through its points, the
    baseline as a star; the legend below the axes."""
    fig, (ax,) = _figure(7, 4.8)
    studies = list(dict.fromkeys(points["study"])) if len(points) else []
    for i, study in enumerate(studies):
        part = points[points["study"] == study]
        label = study if len(studies) > 1 else "configurations"
        color = f"C{i}" if len(studies) > 1 else "0.35"
        ax.errorbar(
            part["x"],
            part["y"],
            yerr=_yerr(part),
            fmt="none",
            ecolor=color,
            alpha=0.5,
            lw=1,
            capsize=2,
            gid="bars",
        )
        ax.scatter(part["x"], part["y"], s=22, color=color, label=label, zorder=3, gid="configs")
    front = points[points["pareto"]].sort_values("x")
    if len(front):
        ax.plot(
            front["x"],
            front["y"],
            "-o",
            color=FRONT_COLOR,
            ms=7,
            mfc="none",
            lw=1.5,
            label="Pareto front",
            zorder=4,
            gid="front",
        )
    base = points[points["baseline"]]
    if len(base):
        ax.scatter(
            base["x"],
            base["y"],
            marker="*",
            s=180,
            color=BASE_COLOR,
            label="baseline",
            zorder=5,
            gid="baseline",
        )
    named = points if len(points) <= LABEL_LIMIT else front
    ax.margins(x=0.08, y=0.08)  # room for the names at the edges
    offsets = _label_offsets(ax, named["x"].to_numpy(float), named["y"].to_numpy(float))
    for row, offset in zip(named.itertuples(), offsets, strict=True):
        far = abs(offset[1]) > 2 * LINE_PT  # a name moved up past its neighbours: a thin leader
        leader = {"arrowstyle": "-", "lw": 0.5, "color": "0.6"} if far else None
        ax.annotate(
            str(row.label),
            (row.x, row.y),
            textcoords="offset points",
            xytext=offset,
            fontsize=7,
            va="center",
            arrowprops=leader,
        )
    ax.set_xlabel(x_title)
    ax.set_ylabel(y_title)
    _title(ax, title, bars)
    ax.grid(alpha=0.3)
    if len(points):
        _legend_below(fig, ax, len(studies) + 2)
    return fig


def draw_ratio_lines(
    lines: pd.DataFrame, x_name: str, y_title: str, title: str, bars: str = ""
) -> Any:
    """Accuracy against ``x_name``, one line per series with error bars from ``y_lo`` to
    ``y_hi`` (what ``bars`` names in the title); the legend below the axes."""
    fig, (ax,) = _figure(7, 4.8)
    for i, (series, part) in enumerate(lines.groupby("series", sort=False)):
        color = f"C{i % 10}"
        ax.errorbar(
            part["x"],
            part["y"],
            yerr=_yerr(part),
            fmt="none",
            capsize=3,
            ecolor=color,
            alpha=0.6,
            gid=f"bars:{series}",
        )
        ax.plot(
            part["x"], part["y"], "-o", ms=4, color=color, label=str(series), gid=f"series:{series}"
        )
    ax.set_xlabel(x_name.replace("_", " "))
    ax.set_ylabel(y_title)
    _title(ax, title, bars)
    ax.grid(alpha=0.3)
    if len(lines):
        _legend_below(fig, ax, lines["series"].nunique())
    return fig


def draw_curves(curves: pd.DataFrame, titles: dict[str, str], title: str) -> Any:
    """One panel per metric (``titles``: metric -> axis title), a line per configuration
    (mean over seeds, band: +- std)."""
    metrics = [m for m in titles if m in set(curves["metric"])]
    fig, axes = _figure(5.5 * max(1, len(metrics)), 4.2, max(1, len(metrics)))
    configs = list(dict.fromkeys(curves["config"]))
    for ax, metric in zip(axes, metrics, strict=False):
        part = curves[curves["metric"] == metric]
        scale = 100.0 if "/acc/" in metric else 1.0
        for i, config in enumerate(configs):
            line = part[part["config"] == config]
            if line.empty:
                continue
            x = line["step"].to_numpy(float)
            y = line["mean"].to_numpy(float) * scale
            std = line["std"].fillna(0.0).to_numpy(float) * scale
            style = "-" if len(x) > 12 else "-o"  # a few epochs: show the points too
            ax.plot(
                x,
                y,
                style,
                ms=3,
                lw=1.4,
                color=f"C{i % 10}",
                label=config,
                gid=f"{metric}:{config}",
            )
            if np.any(std > 0):
                ax.fill_between(x, y - std, y + std, color=f"C{i % 10}", alpha=0.15, lw=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(titles[metric])
        ax.grid(alpha=0.3)
    if metrics:
        _legend_below(fig, axes[0], len(configs))
    fig.suptitle(title, fontsize=10)
    return fig
