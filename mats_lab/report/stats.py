"""Statistics over seeds, pure (numpy, pandas and scipy.stats; no I/O, no drawing).

- :func:`intervals`: for every configuration the two-sided confidence interval of the mean
  over its seeds, from Student's t with ``n - 1`` degrees of freedom
  (``scipy.stats.t.interval``); none for fewer than 2 values.
- :func:`seed_table`: one value per configuration and seed (rows x seeds); a seed run twice
  counts once, with its mean; trials without a seed or a value are left out.
- :func:`paired_rows`: every configuration against the baseline, paired by seed: only the seeds
  both have count. The mean difference (configuration minus baseline), its confidence interval
  and the two-sided paired t-test (``scipy.stats.ttest_rel``) — no test with fewer than 2 pairs.
- :func:`verdict`: ``better`` / ``worse`` (p < alpha, in the metric's direction), ``no evidence``,
  or ``n<2``.
- :func:`adjust_p`: the p-values of one family of tests (the rows of one metric against the
  baseline; the effect lines of one metric) corrected for their number, by Holm's step-down
  method (the family-wise error stays at most alpha) or Benjamini-Hochberg's (the expected
  share of false discoveries among the calls stays at most alpha), with statsmodels'
  ``multipletests``. Off by default (``none``): each test is then at alpha on its own.
- :func:`paired_power`: the power of that paired t-test for a given effect and number of seeds.
- :func:`seeds_for_power`: a planning figure for the next run: how many seeds a paired t-test
  at ``alpha`` needs to call a difference as large as the one observed with 80 % power, given
  the observed spread of the paired differences (the noncentral t, ``scipy.stats.nct``). It
  is what a pilot study tells: itself uncertain, and only as good as the observed spread.

The confidence level is ``1 - alpha`` everywhere, so a difference is called better or worse
exactly when its interval leaves out zero. A difference that is the same in every pair (a
counted cost such as GMACs; the same up to float rounding, 1e-9 relative) has no spread: its
interval is the point itself and the test calls it significant unless it is zero (scipy gives
+-inf / NaN there, with a warning).

scipy is called once per metric on whole arrays (a study of 200 configurations is one call,
not 200), and imported only when there is something to test (``scipy.stats`` takes about
half a second to import).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "ADJUSTMENTS",
    "NO_TEST",
    "Interval",
    "Paired",
    "adjust_p",
    "intervals",
    "paired",
    "paired_power",
    "paired_rows",
    "seed_interval",
    "seeds_for_power",
    "seed_table",
    "verdict",
]

#: ``--adjust`` choices: no correction, Holm (family-wise error), Benjamini-Hochberg (FDR)
ADJUSTMENTS = {"none": "", "holm": "holm", "bh": "fdr_bh"}
ADJUST_TEXT = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
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
    #: seeds a run needs to call a difference this large at 80 % power (inf: none will do)
    seeds_80: float = math.nan


def intervals(
    mean: np.ndarray, std: np.ndarray, n: np.ndarray, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``, each ``(R,)``: the ``1 - alpha`` t interval of each of ``R`` means
    from its sample std (``ddof=1``) and count; NaN for ``n < 2``, the mean itself for std 0."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    n = np.asarray(n, dtype=float)
    low, high = np.full(mean.shape, np.nan), np.full(mean.shape, np.nan)
    exact = (n >= 2) & (std == 0)
    low[exact] = high[exact] = mean[exact]
    spread = (n >= 2) & (std > 0)
    if spread.any():
        from scipy import stats  # imported only when there is something to compute

        low[spread], high[spread] = stats.t.interval(
            1 - alpha, n[spread] - 1, loc=mean[spread], scale=std[spread] / np.sqrt(n[spread])
        )
    return low, high


def seed_interval(values: np.ndarray | pd.Series, alpha: float = 0.05) -> Interval:
    """Mean, std and ``1 - alpha`` t interval of ``values`` (shape ``(n,)``, NaN dropped)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    mean = float(np.mean(x)) if n else math.nan
    std = float(np.std(x, ddof=1)) if n >= 2 else math.nan
    low, high = intervals(np.array([mean]), np.array([std]), np.array([n]), alpha)
    return Interval(mean, std, float(low[0]), float(high[0]), n)


def seed_table(values: pd.Series, rows: pd.Series, seeds: pd.Series) -> pd.DataFrame:
    """``(R, S)``: the mean value of every row label and seed, from per-trial ``values``,
    ``rows`` (a label per trial) and ``seeds``; NaN where a row has no value for a seed."""
    frame = pd.DataFrame(
        {"row": rows.to_numpy(), "seed": seeds.to_numpy(), "value": values.to_numpy(float)}
    ).dropna()
    return frame.groupby(["row", "seed"], sort=False)["value"].mean().unstack("seed")


def paired_rows(table: pd.DataFrame, baseline: pd.Series, alpha: float = 0.05) -> pd.DataFrame:
    """Every row of ``table`` (``(R, S)``: rows x seeds, NaN where missing) minus ``baseline``
    (``(S',)``, indexed by seed), paired over the seeds both have: ``pairs, diff, low, high, p,
    seeds_80`` per row (see :class:`Paired`, :func:`seeds_for_power`)."""
    x = table.to_numpy(float)
    y = baseline.reindex(table.columns).to_numpy(float)
    diffs = x - y[None, :]  # (R, S); NaN where either side lacks the seed
    ok = ~np.isnan(diffs)
    pairs = ok.sum(axis=1)
    out = pd.DataFrame(
        {"pairs": pairs, "diff": np.nan, "low": np.nan, "high": np.nan, "p": np.nan},
        index=table.index,
    )
    out["seeds_80"] = np.nan
    some = pairs > 0
    filled = np.where(ok, diffs, 0.0)
    out.loc[some, "diff"] = filled[some].sum(axis=1) / pairs[some]
    top = np.where(ok, diffs, -np.inf).max(axis=1)
    bottom = np.where(ok, diffs, np.inf).min(axis=1)
    # no spread (up to float rounding): the difference is known exactly
    exact = (pairs >= 2) & np.isclose(top, bottom, rtol=1e-9, atol=1e-12)
    out.loc[exact, "low"] = out.loc[exact, "high"] = out.loc[exact, "diff"]
    out.loc[exact, "p"] = np.where(out.loc[exact, "diff"] == 0, 1.0, 0.0)
    testable = (pairs >= 2) & ~exact
    if testable.any():
        from scipy import stats

        patterns = pd.DataFrame(ok[testable]).drop_duplicates().to_numpy()
        for pattern in patterns:  # rows sharing the same seeds with the baseline: one call
            chosen = testable & (ok == pattern).all(axis=1)
            a = x[chosen][:, pattern]
            b = np.broadcast_to(y[pattern], a.shape)
            test = stats.ttest_rel(a, b, axis=1)
            ci = test.confidence_interval(confidence_level=1 - alpha)
            out.loc[chosen, "low"] = ci.low
            out.loc[chosen, "high"] = ci.high
            out.loc[chosen, "p"] = test.pvalue
    tested = pairs >= 2
    if tested.any():
        spread = np.nanstd(np.where(ok, diffs, np.nan)[tested], axis=1, ddof=1)
        spread[exact[tested]] = 0.0
        out.loc[tested, "seeds_80"] = seeds_for_power(
            out.loc[tested, "diff"].to_numpy(float), spread, alpha
        )
    return out


def adjust_p(p: np.ndarray, method: str) -> np.ndarray:
    """``(R,)``: the p-values ``p`` (``(R,)``, one family of tests) adjusted for their number by
    ``method`` (a key of :data:`ADJUSTMENTS`); NaN (no test) stays NaN and is not counted.
    Compare the result with alpha as it stands."""
    if method not in ADJUSTMENTS:
        raise ValueError(f"adjustment {method!r}: choose one of {', '.join(ADJUSTMENTS)}")
    p = np.asarray(p, dtype=float)
    tested = ~np.isnan(p)
    if method == "none" or not tested.any():
        return p.copy()
    from statsmodels.stats.multitest import multipletests  # only when asked for

    out = np.full(p.shape, np.nan)
    out[tested] = multipletests(p[tested], method=ADJUSTMENTS[method])[1]
    return out


def paired_power(effect: np.ndarray, n: np.ndarray | float, alpha: float = 0.05) -> np.ndarray:
    """``(R,)``: the probability that a two-sided paired t-test at ``alpha`` over ``n`` pairs
    rejects when the true mean difference is ``effect`` standard deviations of the paired
    differences (``(R,)``; its sign does not matter): ``P(|T| > t_crit)``, ``T`` noncentral t
    with ``n - 1`` degrees of freedom and noncentrality ``effect * sqrt(n)``. At effect 0 it
    is ``alpha``."""
    from scipy import stats

    effect = np.abs(np.asarray(effect, dtype=float))
    n = np.asarray(n, dtype=float)
    crit = stats.t.ppf(1 - alpha / 2, n - 1)
    shift = effect * np.sqrt(n)
    # the far tail (-crit with a large positive shift) is ~0; scipy returns NaN there
    far = np.nan_to_num(stats.nct.cdf(-crit, n - 1, shift), nan=0.0)
    return stats.nct.sf(crit, n - 1, shift) + far


def seeds_for_power(
    diff: np.ndarray, sd: np.ndarray, alpha: float = 0.05, power: float = 0.8, most: int = 200
) -> np.ndarray:
    """``(R,)``: the fewest seeds (pairs, 2 or more) with which a two-sided paired t-test at
    ``alpha`` has ``power`` against a true mean difference ``diff`` when the paired differences
    spread with standard deviation ``sd`` (both ``(R,)``); ``inf`` beyond ``most`` seeds or for
    a zero difference, 2 for a nonzero difference without spread, NaN where ``diff`` or ``sd``
    is NaN. Power at ``n``: ``P(|T| > t_crit)`` with ``T`` noncentral t, ``n - 1`` degrees of
    freedom, noncentrality ``diff / sd * sqrt(n)``; it grows with ``n``, so a bisection finds
    the first ``n``."""
    diff, sd = np.abs(np.asarray(diff, dtype=float)), np.asarray(sd, dtype=float)
    out = np.full(diff.shape, np.nan)
    known = ~np.isnan(diff) & ~np.isnan(sd)
    out[known & (diff == 0)] = np.inf
    out[known & (diff > 0) & (sd == 0)] = 2.0
    todo = known & (diff > 0) & (sd > 0)
    if not todo.any():
        return out

    effect = diff[todo] / sd[todo]

    def power_at(n: np.ndarray) -> np.ndarray:
        return paired_power(effect, n, alpha)

    low = np.full(effect.shape, 2.0)  # power_at(low) may already suffice
    high = np.full(effect.shape, float(most))
    enough = power_at(high) >= power
    done = power_at(low) >= power
    while True:  # invariant: power_at(high) >= power where enough; low < high
        open_ = enough & ~done & (high - low > 1)
        if not open_.any():
            break
        mid = np.floor((low + high) / 2)
        ok = power_at(mid) >= power
        high = np.where(open_ & ok, mid, high)
        low = np.where(open_ & ~ok, mid, low)
    found = np.where(done, low, high)
    out[todo] = np.where(enough, found, np.inf)
    return out


def paired(config: pd.Series, baseline: pd.Series, alpha: float = 0.05) -> Paired:
    """``config`` minus ``baseline``, both indexed by seed, over the seeds both have: mean
    difference, its ``1 - alpha`` interval and the paired t-test's p-value."""
    seeds = config.index.union(baseline.index)
    row = paired_rows(pd.DataFrame([config.reindex(seeds)], columns=seeds), baseline, alpha)
    first = row.iloc[0]
    parts = ("diff", "low", "high", "p", "seeds_80")
    return Paired(int(first["pairs"]), *(float(first[k]) for k in parts))


def verdict(result: Paired, maximize: bool, alpha: float = 0.05) -> str:
    """``better`` / ``worse`` when ``p < alpha`` (the direction from ``maximize``), else
    ``no evidence``; ``n<2`` when there was no test."""
    if result.pairs < 2 or math.isnan(result.p):
        return NO_TEST
    if result.p >= alpha or result.diff == 0:
        return NO_EVIDENCE
    return BETTER if (result.diff > 0) == maximize else WORSE
