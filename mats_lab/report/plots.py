"""Drawing: the frames of :mod:`mats_lab.report.figures` as matplotlib figures, saved as PNG
and SVG. Nothing is computed here; every function returns its ``Figure`` so a test can read
back what was drawn. matplotlib's Agg canvas, no pyplot (no global figure state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["draw_curves", "draw_gmacs", "draw_ratio_lines", "save"]

LABEL_LIMIT = 16  # configurations annotated by name when there are at most this many
FRONT_COLOR = "#c0392b"
BASE_COLOR = "#1f77b4"


def _figure(width: float, height: float, cols: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    axes = fig.subplots(1, cols, squeeze=False)[0]
    return fig, list(axes)


def save(fig: Any, stem: Path, svg: bool = True) -> list[Path]:
    """Write ``stem.png`` (and ``stem.svg``); returns the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png")]
    fig.savefig(paths[0], dpi=120)
    if svg:
        paths.append(stem.with_suffix(".svg"))
        fig.savefig(paths[1])
    return paths


def draw_gmacs(points: pd.DataFrame, x_title: str, y_title: str, title: str) -> Any:
    """Accuracy against GMACs: every configuration (error bar: std over seeds), the Pareto
    front as a red line through its points, the baseline as a star."""
    fig, (ax,) = _figure(7, 4.8)
    studies = list(dict.fromkeys(points["study"])) if len(points) else []
    for i, study in enumerate(studies):
        part = points[points["study"] == study]
        label = study if len(studies) > 1 else "configurations"
        color = f"C{i}" if len(studies) > 1 else "0.35"
        ax.errorbar(
            part["x"],
            part["y"],
            yerr=part["y_std"].fillna(0.0),
            fmt="none",
            ecolor=color,
            alpha=0.35,
            lw=1,
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
    for i, row in enumerate(named.itertuples()):
        offset = (5, 4) if i % 2 == 0 else (5, -10)  # alternate, so neighbours do not overlap
        ax.annotate(
            str(row.label), (row.x, row.y), textcoords="offset points", xytext=offset, fontsize=7
        )
    ax.set_xlabel(x_title)
    ax.set_ylabel(y_title)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if len(points):
        ax.legend(fontsize=8, loc="lower right")  # "best" costs a search over every point
    return fig


def draw_ratio_lines(lines: pd.DataFrame, x_name: str, y_title: str, title: str) -> Any:
    """Accuracy against ``x_name``, one line (with std error bars) per series."""
    fig, (ax,) = _figure(7, 4.8)
    for i, (series, part) in enumerate(lines.groupby("series", sort=False)):
        color = f"C{i % 10}"
        ax.errorbar(
            part["x"],
            part["y"],
            yerr=part["y_std"].fillna(0.0),
            fmt="none",
            capsize=3,
            ecolor=color,
            alpha=0.6,
        )
        ax.plot(
            part["x"], part["y"], "-o", ms=4, color=color, label=str(series), gid=f"series:{series}"
        )
    ax.set_xlabel(x_name.replace("_", " "))
    ax.set_ylabel(y_title)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if len(lines):
        ax.legend(fontsize=7, loc="best", ncol=1 if lines["series"].nunique() <= 8 else 2)
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
        axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    return fig
