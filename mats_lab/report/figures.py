"""What each figure shows, computed apart from the drawing (pure pandas, tested on its own):
:mod:`mats_lab.report.plots` draws exactly these frames.

- :func:`gmacs_points`: one point per configuration, mean accuracy against mean GMACs, with
  the Pareto front marked and the confidence interval of the mean accuracy over seeds
  (``y_lo``/``y_hi``, the summary's ``1 - alpha`` t interval; NaN for a single seed) for the
  error bars;
- :func:`ratio_lines`: accuracy against the keep ratio (else the visible ratio, the frame
  budget or the candidate ratio: the first that varies), one line per setting of the other
  parameters (per frame budget when the budget varies), with the same intervals;
- :func:`curve_configs` / :func:`curve_frame`: per-epoch validation accuracy and training loss
  of the compared configurations, mean and std over seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mats_lab.report.summarise import Summary

__all__ = [
    "CLIP_NOTE",
    "X_CANDIDATES",
    "curve_configs",
    "curve_frame",
    "gmacs_points",
    "ratio_lines",
]

#: Parameters an accuracy line plot may run along, in order of preference.
X_CANDIDATES = ("keep_ratio", "visible_ratio", "frame_budget", "candidate_ratio")
#: What the figures' titles add to "CI of the mean": accuracy intervals are clipped (:func:`_ci`).
CLIP_NOTE = "accuracy intervals clipped to 0-100 %"
#: Parameters that split the lines first (their name leads the legend).
SERIES_FIRST = ("frame_budget",)


def _col(summary: Summary, key: str | None) -> str:
    return next(c.title for c in summary.columns if c.key == key) if key else ""


def _scale(summary: Summary, key: str | None) -> float:
    return next((c.scale for c in summary.columns if c.key == key), 1.0)


def _ci(summary: Summary, table: pd.DataFrame, key: str, end: str) -> np.ndarray:
    """``<key>.ci_lo`` / ``<key>.ci_hi`` of ``table`` (rows of ``summary.table``) in the display
    unit (NaN where the table has none).

    An accuracy cannot leave [0, 1], but a t interval of a mean over a few seeds can (a mean
    of 0.39 with a std of 0.28 over 3 seeds gives [-0.32, 1.10]): for accuracy columns the
    drawn interval is clipped to [0, 1], what the figures' titles say (:data:`CLIP_NOTE`)."""
    name = f"{key}.ci_{end}"
    if name not in table.columns:
        return np.full(len(table), np.nan)
    values = pd.to_numeric(table[name], errors="coerce").to_numpy(float)
    if next((c.kind for c in summary.columns if c.key == key), None) == "acc":
        values = np.clip(values, 0.0, 1.0)
    return values * _scale(summary, key)


def gmacs_points(summary: Summary) -> pd.DataFrame:
    """``label, x, y, y_std, y_lo, y_hi, n, pareto, baseline, study`` per configuration
    (accuracy in the table's display unit; ``y_lo``/``y_hi``: the interval of the mean), sorted
    by x; empty when GMACs or accuracy were not measured."""
    columns = ["label", "x", "y", "y_std", "y_lo", "y_hi", "n", "pareto", "baseline", "study"]
    x_key, y_key = summary.pareto_x, summary.primary
    if not x_key or not y_key or summary.table.empty:
        return pd.DataFrame(columns=columns)
    t = summary.table
    scale = _scale(summary, y_key)
    frame = pd.DataFrame(
        {
            "label": [str(i) for i in t.index],
            "x": t[f"{x_key}.mean"].to_numpy(float),
            "y": t[f"{y_key}.mean"].to_numpy(float) * scale,
            "y_std": t[f"{y_key}.std"].to_numpy(float) * scale,
            "y_lo": _ci(summary, t, y_key, "lo"),
            "y_hi": _ci(summary, t, y_key, "hi"),
            "n": t[f"{y_key}.n"].to_numpy(int),
            "pareto": t["pareto"].to_numpy(bool),
            "baseline": t["baseline"].to_numpy(bool),
            "study": t["study"].to_numpy() if "study" in t else summary.study,
        }
    )
    frame = frame.dropna(subset=["x", "y"]).sort_values(["x", "y"], kind="stable")
    return frame.reset_index(drop=True)[columns]


def axis_titles(summary: Summary) -> tuple[str, str]:
    """``(x title, y title)`` of the GMACs figure."""
    return _col(summary, summary.pareto_x), _col(summary, summary.primary)


def ratio_lines(
    summary: Summary, bundles: list[str] | None = None
) -> tuple[str | None, pd.DataFrame, dict[str, object]]:
    """``(x parameter, frame of series, x, y, y_std, y_lo, y_hi, n, held)``.

    The x parameter is the first of :data:`X_CANDIDATES` that varies (None: no figure). Lines
    split by the frame budget and by the other parameters with text values (recipe, masking,
    frame selection, the study in a comparison); bundle labels do not split lines (their knobs
    do). Any other numeric parameter that varies is held at its value in the best
    configuration (``held``), so each line is one slice of the grid. Two configurations on the
    same point of a line are averaged; their interval is then the hull of both intervals.
    """
    columns = ["series", "x", "y", "y_std", "y_lo", "y_hi", "n"]
    t = summary.table
    y_key = summary.primary
    shown = [c for c in summary.config_columns if c in t.columns and c != "study"]

    def numeric(name: str) -> bool:
        return bool(pd.to_numeric(t[name], errors="coerce").notna().all())

    x_name = next((c for c in X_CANDIDATES if c in shown and numeric(c)), None)
    if x_name is None or y_key is None or t.empty:
        return None, pd.DataFrame(columns=columns), {}
    others = [c for c in shown if c != x_name and c not in (bundles or [])]
    split = [c for c in others if c in SERIES_FIRST or not numeric(c)]
    split = [c for c in SERIES_FIRST if c in split] + [c for c in split if c not in SERIES_FIRST]
    held_names = [c for c in others if c not in split]
    held: dict[str, object] = {}
    if held_names:
        best = t[f"{y_key}.mean"].idxmax()
        held = {c: t.at[best, c] for c in held_names}
        t = t[(t[held_names] == pd.Series(held)).all(axis=1)]
    if "study" in t.columns:
        split = ["study", *split]
    scale = _scale(summary, y_key)

    def series(row: dict) -> str:
        if not split:
            return "all"
        return ", ".join(f"{c}={row[c]}" if c != "study" else str(row[c]) for c in split)

    frame = pd.DataFrame(
        {
            "series": [series(row) for row in t[split].astype(object).to_dict("records")],
            "x": pd.to_numeric(t[x_name]).to_numpy(float),
            "y": t[f"{y_key}.mean"].to_numpy(float) * scale,
            "y_std": t[f"{y_key}.std"].to_numpy(float) * scale,
            "y_lo": _ci(summary, t, y_key, "lo"),
            "y_hi": _ci(summary, t, y_key, "hi"),
            "n": t[f"{y_key}.n"].to_numpy(int),
        }
    )
    frame = frame.dropna(subset=["y"])
    # two configurations on the same point of a line (a bundle label with equal knobs): average
    frame = frame.groupby(["series", "x"], sort=False, as_index=False).agg(
        y=("y", "mean"),
        y_std=("y_std", "max"),
        y_lo=("y_lo", "min"),
        y_hi=("y_hi", "max"),
        n=("n", "sum"),
    )
    order = {s: i for i, s in enumerate(dict.fromkeys(frame["series"]))}
    frame = frame.assign(_o=frame["series"].map(order)).sort_values(["_o", "x"], kind="stable")
    return x_name, frame.reset_index(drop=True)[columns], held


def curve_configs(summary: Summary, limit: int = 10) -> list[str]:
    """The configurations whose training curves are drawn: the baseline rows, then the rest by
    the main accuracy, best first, ``limit`` in all (every one when there are few: 10 is the
    colour cycle, so a 3 x 3 factorial study shows all its 9)."""
    t = summary.table
    if t.empty:
        return []
    chosen = [str(i) for i in t.index[t["baseline"]]]
    if summary.primary:
        ranked = t[f"{summary.primary}.mean"].sort_values(ascending=False, kind="stable")
        rest = [str(i) for i in ranked.index]
    else:
        rest = [str(i) for i in t.index]
    chosen += [label for label in rest if label not in chosen]
    return chosen[:limit]


def curve_frame(points: pd.DataFrame, labels: dict[int, str]) -> pd.DataFrame:
    """``config, metric, step, mean, std, n`` from per-trial points ``trial, metric, step,
    value`` (a step logged twice, by a resumed run, counts once: its largest value, as MLflow's
    latest value does); ``labels`` maps trial -> configuration."""
    columns = ["config", "metric", "step", "mean", "std", "n"]
    points = points[points["trial"].isin(labels)]
    if points.empty:
        return pd.DataFrame(columns=columns)
    once = points.groupby(["trial", "metric", "step"], as_index=False)["value"].max()
    once["config"] = once["trial"].map(labels)
    order = {label: i for i, label in enumerate(dict.fromkeys(labels.values()))}
    stats = once.groupby(["config", "metric", "step"], as_index=False)["value"].agg(
        mean="mean", std="std", n="count"
    )
    stats["_order"] = stats["config"].map(order)
    stats = stats.sort_values(["_order", "metric", "step"], kind="stable")
    return stats.drop(columns="_order").reset_index(drop=True)[columns]
