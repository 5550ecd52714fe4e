"""How many seeds a run of a study needs before its verdicts repeat on a second run.

Issue 16 asks that the factorial study's verdicts be the same on two runs. Whether they can be
depends on the effects and their spread over seeds, which a pooled report estimates. This
script takes those estimates as the truth (a plug-in planning figure, itself uncertain) and
asks, for runs of ``n`` seeds each: for every line the report tests (every configuration
against the baseline, every effect line against its control), the probability ``q`` that the
paired t-test calls it (:func:`mats_lab.report.stats.paired_power` at the line's observed mean
and spread of the paired differences); two independent runs give that line the same verdict
with probability ``q^2 + (1 - q)^2``. Summed over a family, the expected number of lines the
same; multiplied, the probability that every line is the same. A line whose true difference is
zero is called at rate alpha, so a family of many such lines rarely repeats whole at any n.
``--bonferroni`` tests each line at alpha over the family's size, a conservative stand-in for
``mats-lab report --adjust holm`` (Holm calls at least what Bonferroni calls).

    python benchmarks/verdict_repeat.py studies/keep_ratio_factorial_pooled12.yaml \\
        --trials reports/keep_ratio_factorial --trials reports/keep_ratio_factorial_replica \\
        --trials reports/keep_ratio_factorial_third --trials reports/keep_ratio_factorial_fourth

Reads trial tables only (no stores, no torch): a few seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from mats_lab.report.build import ReportOptions, find_sources, load
from mats_lab.report.stats import paired_power, seed_table
from mats_lab.report.summarise import config_labels, summarise

METRICS = ("metrics.val/acc/top1", "metrics.test/acc/top1")


def families(
    summary_effects: pd.DataFrame, table: pd.DataFrame, baseline: str, metric: str
) -> dict[str, list[tuple[str, str]]]:
    """``{family: [(configuration, control), ...]}``: the rows against the baseline and the
    effect lines (each configuration against its control) the report tests for ``metric``."""
    rows = [(str(label), baseline) for label in table.index if str(label) != baseline]
    lines = summary_effects[summary_effects["metric"] == metric.removeprefix("metrics.")]
    effects = list(zip(lines["configuration"], lines["control"], strict=True))
    return {"rows against the baseline": rows, "effect lines": effects}


def repeat_table(
    per_seed: pd.DataFrame, pairs: list[tuple[str, str]], seeds: list[int], alpha: float
) -> pd.DataFrame:
    """One row per run size ``n`` (and per test level: as tested, Bonferroni over the family):
    the expected number of the family's lines with the same verdict in two runs, and the
    probability that all are. ``per_seed``: ``(R, S)`` values by configuration and seed."""
    effects = []
    for config, control in pairs:
        diff = (per_seed.loc[config] - per_seed.loc[control]).dropna()  # (pairs,)
        sd = float(diff.std(ddof=1))
        effects.append(np.inf if sd == 0 and diff.mean() != 0 else abs(diff.mean()) / sd)
    effect = np.array(effects)
    out = []
    for n in seeds:
        for level, a in (("as tested", alpha), ("Bonferroni", alpha / len(pairs))):
            called = np.where(np.isinf(effect), 1.0, paired_power(np.nan_to_num(effect), n, a))
            same = called**2 + (1 - called) ** 2
            out.append(
                {
                    "seeds a run": n,
                    "test level": level,
                    "lines": len(pairs),
                    "expected the same": round(float(same.sum()), 1),
                    "P(all the same)": round(float(np.prod(same)), 2),
                }
            )
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", help="the study file the trial tables belong to")
    parser.add_argument("--trials", action="append", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 6, 12, 24])
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    options = ReportOptions(out=Path("/nonexistent"), trials=tuple(args.trials))
    data = load(find_sources([args.study], options, Path.cwd())[0], options)
    summary = summarise(
        data.trials, data.variables, baseline=data.baseline, study=data.name, alpha=args.alpha
    )
    assert summary.baseline is not None, "the study needs a baseline"
    done = data.trials[data.trials["state"] == "COMPLETE"]
    labels = config_labels(done, data.variables)
    seeds = done["seed"].nunique()
    print(f"{data.name}: {len(summary.table)} configurations, {seeds} seeds pooled; their")
    print(f"effects and spreads taken as the truth; alpha {args.alpha:g}\n")
    for metric in METRICS:
        per_seed = seed_table(done[metric], labels, done["seed"])
        for family, pairs in families(
            summary.effects, summary.table, summary.baseline, metric
        ).items():
            table = repeat_table(per_seed, pairs, args.seeds, args.alpha)
            print(f"### {metric.removeprefix('metrics.')}: {family}\n")
            print(table.to_markdown(index=False), "\n")


if __name__ == "__main__":
    main()
