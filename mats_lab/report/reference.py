"""This run against a reference report: the accuracy means of every configuration side by
side, so a user who ran ``make demo`` sees at once whether they reproduced the committed
figures (pure pandas: two ``results.csv`` frames in, one frame out).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["compare_with_reference", "find_reference", "reference_markdown"]


def find_reference(reference: Path, study: str) -> Path | None:
    """``<reference>/<study>/results.csv``, or ``<reference>/results.csv``, if either exists."""
    for path in (reference / study / "results.csv", reference / "results.csv"):
        if path.is_file():
            return path
    return None


def compare_with_reference(run: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """``configuration, metric, reference, this run, difference`` for every accuracy mean
    (``val/...``, ``test/...`` columns ending in ``.mean``) of the configurations both have,
    in the run's row order; values as fractions, the difference in points (x 100)."""
    means = [
        c
        for c in run.columns
        if c.endswith(".mean") and c.startswith(("val/", "test/")) and c in reference.columns
    ]
    ref = reference.set_index(reference["configuration"].astype(str))
    rows = []
    for _, row in run.iterrows():
        name = str(row["configuration"])
        if name not in ref.index:
            continue
        for column in means:
            mine, theirs = row[column], ref.at[name, column]
            if pd.isna(mine) or pd.isna(theirs):
                continue
            rows.append(
                {
                    "configuration": name,
                    "metric": column.removesuffix(".mean"),
                    "reference": float(theirs),
                    "this run": float(mine),
                    "difference": round(100 * (float(mine) - float(theirs)), 2),
                }
            )
    return pd.DataFrame(rows, columns=["configuration", "metric", "reference", "this run",
                                       "difference"])  # fmt: skip


def reference_markdown(frame: pd.DataFrame, reference: Path) -> str:
    """The comparison as a Markdown table with a one-line heading."""
    head = f"This run against the reference in {reference} (difference in points):"
    if frame.empty:
        return f"{head}\n\n(no configuration in common)\n"
    shown = frame.assign(
        reference=frame["reference"].map(lambda v: f"{100 * v:.1f} %"),
        **{"this run": frame["this run"].map(lambda v: f"{100 * v:.1f} %")},
        difference=frame["difference"].map(lambda v: f"{v:+.1f}"),
    )
    return f"{head}\n\n{shown.to_markdown(index=False, disable_numparse=True)}\n"
