"""Did the pre-training learn anything? A note from its ``explained`` at the last epoch.

``MATSPretrainer`` logs ``explained`` = 1 - loss / (the loss of predicting zeros) with each
training step; the sweep records its per-epoch mean as ``<stage>/train/explained`` and the
report's trial frame carries the last epoch's value as ``metrics.<stage>/train/explained``.
Near 0 the decoder predicts nothing beyond zeros, whatever the loss curve looks like; the
note gives it per configuration so nobody reads a flat but low loss as learning.

Only pandas is imported here.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["EXPLAINED_SUFFIX", "pretraining_fit_note"]

EXPLAINED_SUFFIX = "/train/explained"


def pretraining_fit_note(trials: pd.DataFrame, labels: pd.Series) -> str | None:
    """One line: each configuration's mean ``explained`` (%) over its complete trials, per
    pre-training stage that logged it; ``None`` when no trial has it.

    Args:
        trials: the report's trial frame (``state``, ``metrics.*`` columns).
        labels: each trial's configuration label (:func:`~.summarise.config_labels`),
            same index.
    """
    columns = [
        c for c in trials.columns if c.startswith("metrics.") and c.endswith(EXPLAINED_SUFFIX)
    ]
    complete = trials["state"] == "COMPLETE"
    parts = []
    for column in sorted(columns):
        values = pd.to_numeric(trials.loc[complete, column], errors="coerce")
        stage = column.removeprefix("metrics.").removesuffix(EXPLAINED_SUFFIX)
        means = values.groupby(labels[complete]).agg(["mean", "count"])
        # ``+ 0.0`` turns the rounding's -0.0 (a tiny negative mean) into 0.0
        shown = [
            f"{label} {round(100 * row['mean'], 1) + 0.0:.1f} % ({int(row['count'])})"
            for label, row in means.iterrows()
            if row["count"] > 0
        ]
        if shown:
            parts.append(f"`{stage}`: " + ", ".join(shown))
    if not parts:
        return None
    return (
        "pre-training fit: the share of the predict-zeros error its decoder removes at the "
        "last epoch (`explained` = 1 - loss / loss of predicting zeros; near 0 it learned "
        "nothing beyond zeros, and a pre-trained start is then no better than a random one), "
        "mean per configuration (trials): " + "; ".join(parts)
    )
