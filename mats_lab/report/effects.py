"""The effect of each factor with the others held: for a study of two variables or more, every
configuration paired by seed with its *control*, the configuration that differs from it in one
variable only, that variable set to the baseline's level.

In a factorial study (pre-training x fine-tuning keep ratio, baseline: no pre-training, keep
1.0) the statistics table pairs every row with the one baseline, so "MATS pre-training, keep
0.3" against "none, keep 1.0" mixes both choices. This table separates them: "pretrain=mats vs
none, at keep_ratio=0.3" is the effect of pre-training alone at that keep ratio, "keep_ratio=0.3
vs 1.0, at pretrain=mats" the effect of the keep ratio alone after MATS pre-training. Each line
is its own paired t-test at the study's ``alpha``: no correction for the number of lines unless
``adjust`` names one, in which case the lines of one metric are one family
(:func:`~mats_lab.report.stats.adjust_p`): ``p`` is then adjusted, the verdict follows it and
``p_raw`` keeps the test's own.

Pure pandas over the trial frame and the summary table; the statistics are
:mod:`mats_lab.report.stats`'.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mats_lab.report.cells import cell_text
from mats_lab.report.stats import Paired, adjust_p, paired, verdict

__all__ = ["COLUMNS", "simple_effects"]

COLUMNS = [
    "factor", "change", "held", "configuration", "control", "metric",
    "pairs", "diff", "diff_lo", "diff_hi", "p", "seeds_80", "verdict",
]  # fmt: skip


def simple_effects(
    table: pd.DataFrame,
    per_seed: dict[str, pd.DataFrame],
    factors: list[str],
    columns: list[Any],
    baseline: str | None,
    alpha: float = 0.05,
    adjust: str = "none",
) -> pd.DataFrame:
    """One line per (factor, configuration off the baseline's level of it, metric) whose
    control exists: :data:`COLUMNS`, differences in the metric's own unit (configuration minus
    control). ``table``: the summary table (index: configuration label, a column per factor);
    ``per_seed``: for each column's metric, its ``(R, S)`` value by configuration label and
    seed (:func:`~mats_lab.report.stats.seed_table`); ``columns``: the accuracy
    :class:`~mats_lab.report.summarise.Column` s. Empty for fewer than two factors or no
    baseline."""
    if baseline is None or len(factors) < 2 or baseline not in table.index:
        return pd.DataFrame(columns=COLUMNS)
    cells = {str(label): {f: cell_text(row[f]) for f in factors} for label, row in table.iterrows()}
    by_cells = {tuple(c[f] for f in factors): label for label, c in cells.items()}
    base = cells[baseline]
    pairs: list[tuple[str, str, str]] = []  # (factor, configuration, control)
    for factor in factors:
        for label, c in cells.items():
            if c[factor] == base[factor]:
                continue
            key = tuple(base[f] if f == factor else c[f] for f in factors)
            control = by_cells.get(key)
            if control is not None:
                pairs.append((factor, label, control))
    if not pairs:
        return pd.DataFrame(columns=COLUMNS)
    lines = []
    for col in columns:
        values = per_seed[col.metric]
        for factor, label, control in pairs:
            if label not in values.index or control not in values.index:
                continue
            result = paired(values.loc[label], values.loc[control], alpha)
            held = ", ".join(f"{f}={cells[label][f]}" for f in factors if f != factor)
            lines.append(
                {
                    "factor": factor,
                    "change": f"{cells[label][factor]} vs {base[factor]}",
                    "held": held,
                    "configuration": label,
                    "control": control,
                    "metric": col.metric.removeprefix("metrics."),
                    "pairs": result.pairs,
                    "diff": result.diff,
                    "diff_lo": result.low,
                    "diff_hi": result.high,
                    "p": result.p,
                    "seeds_80": result.seeds_80,
                    "verdict": verdict(result, col.maximize, alpha),
                }
            )
    frame = pd.DataFrame(lines, columns=COLUMNS)
    if adjust != "none" and len(frame):
        frame = _adjusted(frame, columns, adjust, alpha)
    return frame


def _adjusted(frame: pd.DataFrame, columns: list[Any], adjust: str, alpha: float) -> pd.DataFrame:
    """``frame`` with each metric's p-values adjusted as one family, the raw ones in ``p_raw``
    and the verdicts from the adjusted ones."""
    frame = frame.assign(p_raw=frame["p"])
    maximize = {c.metric.removeprefix("metrics."): c.maximize for c in columns}
    for _, lines in frame.groupby("metric", sort=False):
        frame.loc[lines.index, "p"] = adjust_p(lines["p"].to_numpy(float), adjust)
    frame["verdict"] = [
        verdict(Paired(int(r.pairs), r.diff, r.diff_lo, r.diff_hi, r.p), maximize[r.metric], alpha)
        for r in frame.itertuples(index=False)
    ]
    return frame
