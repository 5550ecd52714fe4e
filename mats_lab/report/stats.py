"""Statistics over seeds, pure (numpy, pandas and scipy.stats; no I/O, no drawing).

- :func:`seed_interval`: the mean of one configuration's trials, the sample std (``ddof=1``)
  and the two-sided confidence interval of the mean from Student's t with ``n - 1`` degrees of
  freedom (``scipy.stats.t.interval``); no std and no interval for fewer than 2 values.
- :func:`paired`: a configuration against the baseline, paired by seed: only the seeds both
  have count, a seed run twice counts once (its mean). The mean difference (configuration minus
  baseline), its confidence interval and the two-sided paired t-test
  (``scipy.stats.ttest_rel``) — or no test at all with fewer than 2 pairs.
- :func:`verdict`: ``better`` / ``worse`` (p < alpha, in the metric's direction), ``no evidence``,
  or ``n<2``.

The confidence level is ``1 - alpha`` everywhere, so a difference is called better or worse
exactly when its interval leaves out zero. A difference that is the same in every pair (a
counted cost such as GMACs) has no spread: its interval is the point itself and the test
calls it significant unless it is zero (scipy gives +-inf / NaN there, with a warning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["NO_TEST", "Interval", "Paired", "paired", "seed_interval", "verdict"]

NO_TEST = "n<2"  # the verdict when fewer than 2 seeds pair up
BETTER, WORSE, NO_EVIDENCE = "better", "worse", "no evidence"


@dataclass(frozen=True)
class Interval:
    """Mean, sample std and confidence interval of ``n`` values (NaN where undefined)."""

    mean: float
    std: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Paired:
    """Configuration minus baseline over ``pairs`` shared seeds (NaN where undefined)."""

    pairs: int
    diff: float
    low: float
    high: float
    p: float


def seed_interval(values: np.ndarray | pd.Series, alpha: float = 0.05) -> Interval:
    """The ``1 - alpha`` t interval of the mean of ``values`` (shape ``(n,)``, NaN dropped)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(np.mean(x))
    if n < 2:
        return Interval(mean, math.nan, math.nan, math.nan, n)
    std = float(np.std(x, ddof=1))
    if std == 0:
        return Interval(mean, 0.0, mean, mean, n)
    from scipy import stats  # ~0.6 s to import: only when a report has numbers to test

    low, high = stats.t.interval(1 - alpha, n - 1, loc=mean, scale=std / math.sqrt(n))
    return Interval(mean, std, float(low), float(high), n)


def by_seed(values: pd.Series, seeds: pd.Series) -> pd.Series:
    """One value per seed (the mean of repeats), seeds without a value or a number dropped."""
    frame = pd.DataFrame({"seed": seeds.to_numpy(), "value": values.to_numpy(float)})
    frame = frame.dropna()
    return frame.groupby("seed")["value"].mean()


def paired(config: pd.Series, baseline: pd.Series, alpha: float = 0.05) -> Paired:
    """``config`` minus ``baseline``, both indexed by seed (see :func:`by_seed`), over the seeds
    both have: mean difference, its ``1 - alpha`` interval and the paired t-test's p-value."""
    shared = config.index.intersection(baseline.index)
    diffs = config.loc[shared].to_numpy(float) - baseline.loc[shared].to_numpy(float)
    n = len(diffs)
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(np.mean(diffs))
    if n < 2:
        return Paired(n, mean, math.nan, math.nan, math.nan)
    if np.all(diffs == diffs[0]):  # no spread: the difference is known exactly
        return Paired(n, mean, mean, mean, 1.0 if mean == 0 else 0.0)
    from scipy import stats

    test = stats.ttest_rel(config.loc[shared].to_numpy(float), baseline.loc[shared].to_numpy(float))
    ci = test.confidence_interval(confidence_level=1 - alpha)
    return Paired(n, mean, float(ci.low), float(ci.high), float(test.pvalue))


def verdict(result: Paired, maximize: bool, alpha: float = 0.05) -> str:
    """``better`` / ``worse`` when ``p < alpha`` (the direction from ``maximize``), else
    ``no evidence``; ``n<2`` when there was no test."""
    if result.pairs < 2 or math.isnan(result.p):
        return NO_TEST
    if result.p >= alpha or result.diff == 0:
        return NO_EVIDENCE
    return BETTER if (result.diff > 0) == maximize else WORSE
