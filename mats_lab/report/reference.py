"""This run against a reference report: the accuracy means of every configuration side by
side, so a user who ran ``make demo`` sees at once whether they reproduced the committed
figures, and, where both reports have statistics, the verdicts against the baseline side by
side, so a replication (another seed set, another machine) shows which conclusions held
(pure pandas: two ``results.csv`` or ``stats.csv`` frames in, one frame out).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mats_lab.report.stores import complete_machines

__all__ = [
    "compare_verdicts",
    "compare_with_reference",
    "effect_line",
    "find_reference",
    "machine_line",
    "reference_markdown",
    "verdicts_markdown",
]


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


def machine_line(run: pd.DataFrame | None, reference: pd.DataFrame | None) -> str:
    """One line on where the two reports' complete trials ran (their ``trials.csv`` frames,
    column ``machine``), or ``""`` when this run recorded none or both ran on the same."""
    mine, theirs = complete_machines(run), complete_machines(reference)
    if not mine or mine == theirs:
        return ""
    where = " / ".join(theirs) if theirs else "a machine it did not record"
    return (
        f"The reference ran on {where}; this run on {' / '.join(mine)}. Tiny trainings give a "
        "different run for the same seed on another machine's CPU kernels, so differences here "
        "can be the machine's rather than the code's: compare the verdicts."
    )


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


def _configuration(row: pd.Series) -> str:
    return str(row["configuration"])


def effect_line(row: pd.Series) -> str:
    """An ``effects.csv`` line's name: ``pretrain mats vs none, at keep_ratio=0.3``."""
    return f"{row['factor']} {row['change']}, at {row['held']}"


def compare_verdicts(
    run: pd.DataFrame,
    reference: pd.DataFrame,
    name: Callable[[pd.Series], str] = _configuration,
) -> pd.DataFrame:
    """``configuration, metric, reference, this run, same, opposite`` for every (line, metric) both
    frames test: two ``stats.csv`` (a line per configuration against the baseline) or, with
    ``name=effect_line``, two ``effects.csv`` (a line per factor change against its control);
    in the run's row order; a verdict cell reads ``worse (p=0.02)``; ``opposite``: better in
    one and worse in the other. Lines without a test on either side (the baseline itself,
    fewer than 2 paired seeds) are left out."""
    tested = {"better", "worse", "no evidence"}
    ref = {
        (name(r), str(r["metric"])): r
        for _, r in reference.iterrows()
        if str(r["verdict"]) in tested
    }
    rows = []
    for _, row in run.iterrows():
        key = (name(row), str(row["metric"]))
        if str(row["verdict"]) not in tested or key not in ref:
            continue
        theirs = ref[key]
        rows.append(
            {
                "configuration": key[0],
                "metric": key[1],
                "reference": _verdict(theirs),
                "this run": _verdict(row),
                "same": str(theirs["verdict"]) == str(row["verdict"]),
                "opposite": {str(theirs["verdict"]), str(row["verdict"])} == {"better", "worse"},
                "called": str(theirs["verdict"]) == str(row["verdict"]) in ("better", "worse"),
            }
        )
    columns = ["configuration", "metric", "reference", "this run", "same", "opposite", "called"]
    return pd.DataFrame(rows, columns=columns)


def _verdict(row: pd.Series) -> str:
    p = row.get("p")
    return str(row["verdict"]) if pd.isna(p) else f"{row['verdict']} (p={float(p):.2g})"


def verdicts_markdown(
    frame: pd.DataFrame, reference: Path, what: str = "Verdicts against the baseline"
) -> str:
    """The verdict comparison as Markdown, headed by how many verdicts are the same, how many of
    those are a call (better, or worse, in both: "no evidence" twice is agreement too, but one
    that a run without power reaches by calling nothing) and how many are opposite (better in
    one, worse in the other)."""
    if frame.empty:
        return (
            f"{what}: none tested in both this run and {reference} "
            "(a test needs at least 2 seeds of a configuration and of the baseline).\n"
        )
    same = int(frame["same"].sum())
    opposite = int(frame["opposite"].sum())
    called = int(frame["called"].sum())
    head = (
        f"{what}, this run and the reference in {reference}: "
        f"{same} of {len(frame)} the same ({called} of them better or worse in both), "
        f"{opposite} opposite"
    )
    shown = frame.assign(same=frame["same"].map({True: "yes", False: "**no**"}))
    shown.loc[frame["opposite"], "same"] = "**no: opposite**"
    shown = shown.drop(columns=["opposite", "called"])
    return f"{head}\n\n{shown.to_markdown(index=False, disable_numparse=True)}\n"
