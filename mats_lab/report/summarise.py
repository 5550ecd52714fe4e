"""Summarise: pure pandas (and scipy.stats, through :mod:`mats_lab.report.stats`) from the tidy
trial frame to the study's table.

One row per configuration (the trial's parameters without the seed), over its COMPLETE trials
only. For every reported metric:

- ``<key>.mean``, ``<key>.std`` (sample std, ``ddof=1``; NaN for a single seed), ``<key>.n``
  (trials with a value) and ``<key>.ci_lo`` / ``<key>.ci_hi``: the ``1 - alpha`` confidence
  interval of the mean over seeds (Student's t; NaN for a single seed);
- ``<key>.delta``: the change of the mean against the baseline row (accuracy in points, cost
  as a ratio), as before;
- against the baseline, paired by seed (only seeds both rows have; a seed run twice counts
  once, its mean): ``<key>.pairs``, ``<key>.diff`` (configuration minus baseline, in the
  metric's own unit), ``<key>.diff_lo`` / ``<key>.diff_hi`` (its ``1 - alpha`` interval),
  ``<key>.p`` (two-sided paired t-test) and ``<key>.verdict``: ``better`` / ``worse`` (p <
  alpha, in the metric's direction), ``no evidence``, ``n<2`` (fewer than 2 shared seeds: no
  test) or ``baseline`` on the baseline row itself. Each row is tested on its own against
  the baseline: no correction for the number of rows, unless ``adjust`` names one (``holm``,
  ``bh``; :func:`~mats_lab.report.stats.adjust_p`): then ``<key>.p`` is the adjusted p-value
  over that metric's rows, the verdict follows it, and ``<key>.p_raw`` keeps the test's own;
  the intervals stay each at ``1 - alpha`` on its own (not simultaneous). The report shows
  verdicts for the accuracy columns; cost columns (GMACs, memory, time) keep their ratio
  deltas, their tests only decide the bold mark.

**Best (bold)**, per column: among the rows whose verdict is ``better``, the one(s) with the
best mean. When no row is better and every other row is ``worse``, the baseline. Otherwise
nothing. So a study with one seed per configuration (no test anywhere) marks no row, and bold
means "better than the baseline at level alpha, with the best mean of those" — it does not
claim the bold row beats the other ``better`` rows.

Also: which rows are on the Pareto front of accuracy against fine-tuning GMACs (by the means).
Trials that are not COMPLETE (pruned, failed, running, queued) are counted and listed, never
averaged in.

The baseline row is the one ``--baseline`` names, else by convention the first configuration
that mentions ``videomae``, else keeps every token (``keep_ratio`` 1.0), else uses tube
masking, else uniform frame selection, else the first configuration.

One file although it passes 400 lines: the table, its baseline, its deltas, verdicts and bold
marks are one computation over one frame (the statistics themselves are
:mod:`mats_lab.report.stats`); split, each part would pass the half-built table to the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mats_lab.report.cells import cell_text, missing
from mats_lab.report.effects import simple_effects
from mats_lab.report.stats import (
    ADJUSTMENTS,
    Paired,
    adjust_p,
    intervals,
    paired_rows,
    seed_table,
    verdict,
)

__all__ = [
    "Column",
    "Summary",
    "choose_columns",
    "compare",
    "config_labels",
    "pareto_front",
    "pick_baseline",
    "summarise",
]

#: Order of the configuration columns after the bundle labels (then the rest, sorted).
KNOWN_ORDER = (
    "recipe",
    "masking",
    "frame_select",
    "scorer",
    "keep_ratio",
    "visible_ratio",
    "frame_budget",
    "candidate_ratio",
)
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


@dataclass(frozen=True)
class Column:
    """A reported metric: where it is in the trial frame and how it reads."""

    key: str  # short id, e.g. "top1"; the table's columns are "<key>.mean", "<key>.std", ...
    metric: str  # trial frame column, e.g. "metrics.test/acc/top1"
    title: str
    kind: str  # "acc" (delta in points) or "cost" (delta as a ratio)
    maximize: bool
    scale: float = 1.0  # display factor (100: fractions shown as percent)


@dataclass
class Summary:
    """A study's table and what the report says about it."""

    study: str
    table: pd.DataFrame  # index: configuration label (see module docstring for columns)
    columns: list[Column]
    config_columns: list[str]  # parameter names shown as columns
    fixed: dict[str, Any] = field(default_factory=dict)  # parameters equal in every row
    best: dict[str, list[str]] = field(default_factory=dict)  # column key -> best rows
    baseline: str | None = None
    baseline_reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)
    pareto_x: str | None = None  # key of the cost column of the Pareto front
    primary: str | None = None  # key of the main accuracy column
    alpha: float = 0.05  # level of the tests; intervals are at 1 - alpha
    adjust: str = "none"  # correction of each metric's p-values for their number (ADJUSTMENTS)
    # each factor's effect with the others held (mats_lab.report.effects; empty: one factor)
    effects: pd.DataFrame = field(default_factory=pd.DataFrame)

    def few_seeds(self) -> list[str]:
        """Rows with fewer than 2 seeds (no interval, no test)."""
        if self.table.empty:
            return []
        return [str(i) for i in self.table.index[self.table["n"] < 2]]

    def ranks_nothing(self) -> bool:
        """True when no row has 2 seeds or more: nothing can be ranked."""
        return bool(len(self.table)) and bool((self.table["n"] < 2).all())


def config_labels(trials: pd.DataFrame, variables: list[str]) -> pd.Series:
    """A label per trial from the study's variables: ``mats-0.3`` or ``a=1, b=x``."""
    names = [v for v in variables if f"params.{v}" in trials.columns]
    if not names:
        return pd.Series(["all"] * len(trials), index=trials.index, dtype=object)
    values = trials[[f"params.{v}" for v in names]]
    labels = []
    for row in values.itertuples(index=False):
        if all(missing(v) for v in row):
            labels.append("")
        elif len(names) == 1:
            labels.append(cell_text(row[0]))
        else:
            labels.append(", ".join(f"{n}={cell_text(v)}" for n, v in zip(names, row, strict=True)))
    return pd.Series(labels, index=trials.index, dtype=object)


def choose_columns(complete: pd.DataFrame, stage_names: list[str]) -> list[Column]:
    """The metrics to report, those the COMPLETE trials have: top-1 / top-5 (test when the
    trials were tested, and val top-1 beside it), pre-training GMACs per clip (the ``pretrain``
    stage, else the first of several), fine-tuning GMACs per test view (the last stage), peak
    memory, training throughput and wall time."""

    def has(column: str) -> bool:
        return column in complete.columns and bool(complete[column].notna().any())

    split = "test" if has("metrics.test/acc/top1") else "val"
    pre = "pretrain" if "pretrain" in stage_names or not stage_names else stage_names[0]
    pre = pre if len(stage_names) != 1 else ""
    candidates = [
        Column("top1", f"metrics.{split}/acc/top1", f"{split} top-1 (%)", "acc", True, 100.0),
        Column("top5", f"metrics.{split}/acc/top5", f"{split} top-5 (%)", "acc", True, 100.0),
        Column("val_top1", "metrics.val/acc/top1", "val top-1 (%)", "acc", True, 100.0),
        Column(
            "pretrain_gmacs", f"metrics.{pre}/train_gmacs", "pre-train GMACs/clip", "cost", False
        ),
        Column("finetune_gmacs", "metrics.test_gmacs", "fine-tune GMACs/view", "cost", False),
        Column("memory", "metrics.peak_memory_mb", "peak memory (MB)", "cost", False),
        Column("throughput", "metrics.throughput", "train clips/s", "cost", True),
        Column("wall", "metrics.wall_time_s", "wall time (s)", "cost", False),
    ]
    if split == "val":
        candidates = [c for c in candidates if c.key != "val_top1"]
    if not pre:
        candidates = [c for c in candidates if c.key != "pretrain_gmacs"]
    return [c for c in candidates if has(c.metric)]


def _param_order(names: list[str], bundles: list[str]) -> list[str]:
    known = [n for n in KNOWN_ORDER if n in names and n not in bundles]
    rest = sorted(n for n in names if n not in bundles and n not in known)
    return [b for b in bundles if b in names] + known + rest


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bool mask of the points no other point dominates (lower or equal ``x``, higher or equal
    ``y``, better in one). NaN points are never on the front."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    front = np.zeros(len(x), dtype=bool)
    best_y = -np.inf
    order = np.lexsort((-y, x))  # by x ascending, then y descending
    for i in order:
        if ok[i] and y[i] > best_y:
            front[i] = True
            best_y = y[i]
    # equal points: all of them are on the front when one is
    for i in np.flatnonzero(ok & ~front):
        same = front & (x == x[i]) & (y == y[i])
        front[i] = bool(same.any())
    return front


def pick_baseline(
    table: pd.DataFrame,
    config_columns: list[str],
    requested: str | None = None,
    named_by: str = "--baseline",
) -> tuple[str | None, str]:
    """``(row label, why)`` of the baseline row; ValueError if ``requested`` matches none.
    ``named_by``: where ``requested`` comes from (the option or the study file), as the
    reason and the error say it."""
    if table.empty:
        return None, "no completed configuration"
    labels = [str(i) for i in table.index]
    if requested:
        wanted = requested.strip()
        if wanted in labels:
            return wanted, named_by
        pairs = dict(p.split("=", 1) for p in wanted.replace(" ", "").split(",") if "=" in p)
        for label, (_, row) in zip(labels, table.iterrows(), strict=True):
            cells = {c: cell_text(row[c]) for c in config_columns}
            # a pair may name a variable with one value in the study (not in the labels)
            if pairs and all(k in row.index and cell_text(row[k]) == v for k, v in pairs.items()):
                return label, named_by
            if not pairs and wanted.lower() in (v.lower() for v in cells.values()):
                return label, named_by
        raise ValueError(f"{named_by} {requested!r} matches no configuration: {'; '.join(labels)}")
    rules = [
        (
            "mentions videomae",
            lambda r: any("videomae" in cell_text(r[c]).lower() for c in config_columns),
        ),
        ("keeps every token (keep_ratio 1.0)", lambda r: _equals(r, "keep_ratio", 1.0)),
        ("uses tube masking", lambda r: _equals(r, "masking", "tube")),
        ("uses uniform frame selection", lambda r: _equals(r, "frame_select", "uniform")),
    ]
    for why, rule in rules:
        for label, (_, row) in zip(labels, table.iterrows(), strict=True):
            if rule(row):
                return label, f"the first configuration that {why}"
    return labels[0], "the first configuration (none is VideoMAE, keep 1.0, tube or uniform)"


def _equals(row: pd.Series, name: str, value: Any) -> bool:
    return name in row.index and not missing(row[name]) and row[name] == value


def _excluded(trials: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    done = trials[trials["state"] == "COMPLETE"]
    by_key = dict(zip(done["point_key"], done["trial"], strict=True))
    by_point = {
        (lab, s): t
        for lab, s, t in zip(labels[done.index], done["seed"], done["trial"], strict=True)
    }
    rows = []
    for index, row in trials[trials["state"] != "COMPLETE"].iterrows():
        later = by_key.get(row["point_key"]) if row["point_key"] else None
        if later is None:
            later = by_point.get((labels[index], row["seed"]))
        rows.append(
            {
                "trial": int(row["trial"]),
                "state": row["state"],
                "configuration": labels[index] or "(not started)",
                "seed": row["seed"],
                "failure": row["failure"],
                "error": row["error"],
                "completed_later": "" if later is None else f"trial {int(later)}",
            }
        )
    columns = ["trial", "state", "configuration", "seed", "failure", "error", "completed_later"]
    return pd.DataFrame(rows, columns=columns)


def _mark(
    table: pd.DataFrame, columns: list[Column], x_key: str | None, y_key: str | None
) -> dict[str, list[str]]:
    """Best rows per column by the verdicts (rule in the module docstring) and the ``pareto``
    column."""
    best: dict[str, list[str]] = {}
    for col in columns:
        verdicts = table.get(f"{col.key}.verdict")
        if verdicts is None:
            continue
        means = table[f"{col.key}.mean"]
        better = means[(verdicts == "better") & means.notna()]
        if len(better):
            target = better.max() if col.maximize else better.min()
            best[col.key] = [str(i) for i in better.index[better == target]]
        elif (verdicts == "worse").any() and verdicts.isin(["worse", "baseline"]).all():
            bases = means[verdicts == "baseline"].dropna()  # several in a comparison
            if len(bases):
                target = bases.max() if col.maximize else bases.min()
                best[col.key] = [str(i) for i in bases.index[bases == target]]
    if x_key and y_key:
        table["pareto"] = pareto_front(
            table[f"{x_key}.mean"].to_numpy(float), table[f"{y_key}.mean"].to_numpy(float)
        )
    else:
        table["pareto"] = False
    return best


def _statistics(
    table: pd.DataFrame,
    complete: pd.DataFrame,
    labels: pd.Series,
    columns: list[Column],
    baseline: str | None,
    alpha: float,
    adjust: str = "none",
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The interval and paired-test columns of every metric (module docstring), as a frame on
    ``table``'s index; and each metric's ``(R, S)`` values by configuration and seed (the
    paired tests' input, which the effects table pairs again)."""
    rows = labels[complete.index]
    by_metric: dict[str, pd.DataFrame] = {}
    out: dict[str, Any] = {}
    for col in columns:
        key = col.key
        out[f"{key}.ci_lo"], out[f"{key}.ci_hi"] = intervals(
            table[f"{key}.mean"].to_numpy(float),
            table[f"{key}.std"].to_numpy(float),
            table[f"{key}.n"].to_numpy(float),
            alpha,
        )
        by_metric[col.metric] = seed_table(complete[col.metric], rows, complete["seed"])
        per_seed = by_metric[col.metric].reindex(table.index)
        base = per_seed.loc[baseline] if baseline is not None else pd.Series(dtype=float)
        result = paired_rows(per_seed, base, alpha)
        if baseline is not None:  # the baseline against itself: nothing to test
            result.loc[baseline] = [0, np.nan, np.nan, np.nan, np.nan, np.nan]
        if adjust != "none":  # one family: this metric's rows against the baseline
            out[f"{key}.p_raw"] = result["p"].copy()
            result["p"] = adjust_p(result["p"].to_numpy(float), adjust)
        out[f"{key}.pairs"] = result["pairs"].astype(int)
        out[f"{key}.diff"] = result["diff"]
        out[f"{key}.diff_lo"] = result["low"]
        out[f"{key}.diff_hi"] = result["high"]
        out[f"{key}.p"] = result["p"]
        out[f"{key}.seeds_80"] = result["seeds_80"]
        out[f"{key}.verdict"] = [
            "baseline"
            if label == baseline
            else verdict(Paired(int(r.pairs), r.diff, r.low, r.high, r.p), col.maximize, alpha)
            for label, r in zip(table.index, result.itertuples(), strict=True)
        ]
    return pd.DataFrame(out, index=table.index), by_metric


def summarise(
    trials: pd.DataFrame,
    variables: list[str],
    *,
    bundles: list[str] | None = None,
    stage_names: list[str] | None = None,
    baseline: str | None = None,
    baseline_named_by: str = "--baseline",
    study: str = "",
    alpha: float = 0.05,
    adjust: str = "none",
) -> Summary:
    """The study's table from its tidy trial frame (see :mod:`mats_lab.report.collect`);
    ``alpha``: the level of the paired tests (intervals at ``1 - alpha``); ``adjust``: the
    correction of each metric's p-values for their number (module docstring)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha {alpha} must lie between 0 and 1")
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjustment {adjust!r}: choose one of {', '.join(ADJUSTMENTS)}")
    bundles = bundles or []
    labels = config_labels(trials, variables)
    complete = trials[trials["state"] == "COMPLETE"].sort_values("trial", kind="stable")
    columns = choose_columns(complete, stage_names or [])
    params = [c.removeprefix("params.") for c in trials.columns if c.startswith("params.")]
    params = (
        [p for p in params if complete[f"params.{p}"].notna().any()] if len(complete) else params
    )
    ordered = _param_order(params, bundles)
    groups = complete.groupby(labels[complete.index], sort=False)
    table = pd.DataFrame(index=pd.Index(list(groups.groups), name="configuration", dtype=object))
    first = groups.first()
    for name in ordered:
        table[name] = first[f"params.{name}"]
    table["n"] = groups.size().astype(int)
    table["first_trial"] = groups["trial"].min()
    for col in columns:
        values = groups[col.metric]
        table[f"{col.key}.mean"] = values.mean()
        table[f"{col.key}.std"] = values.std(ddof=1)
        table[f"{col.key}.n"] = values.count().astype(int)
    shown = [p for p in ordered if table[p].map(cell_text).nunique() > 1 or len(table) == 1]
    fixed = {p: table[p].iloc[0] for p in ordered if p not in shown and len(table)}
    chosen, why = pick_baseline(table, shown or ordered, baseline, baseline_named_by)
    table["baseline"] = [str(i) == chosen for i in table.index]
    for col in columns:
        base = table.loc[chosen, f"{col.key}.mean"] if chosen is not None else np.nan
        mean = table[f"{col.key}.mean"]
        table[f"{col.key}.delta"] = (mean - base) * col.scale if col.kind == "acc" else mean / base
    tests, per_seed = _statistics(table, complete, labels, columns, chosen, alpha, adjust)
    table = pd.concat([table, tests], axis=1)  # at once: a column per statistic and metric
    accuracy = [c for c in columns if c.kind == "acc"]
    factors = [v for v in variables if v in shown] + [p for p in shown if p not in variables]
    effects = simple_effects(table, per_seed, factors, accuracy, chosen, alpha, adjust)
    others = trials[trials["state"] != "COMPLETE"]
    other_labels = labels[others.index]
    table["excluded"] = [int((other_labels == i).sum()) for i in table.index]
    y_key = columns[0].key if columns and columns[0].kind == "acc" else None
    costs = [k for k in ("finetune_gmacs", "pretrain_gmacs") if k in {c.key for c in columns}]
    x_key = costs[0] if costs else None
    best = _mark(table, columns, x_key, y_key)
    counts = {s: int((trials["state"] == s).sum()) for s in STATES if (trials["state"] == s).any()}
    return Summary(
        study=study,
        table=table,
        columns=columns,
        config_columns=shown,
        fixed=fixed,
        best=best,
        baseline=chosen,
        baseline_reason=why,
        counts=counts,
        excluded=_excluded(trials, labels),
        pareto_x=x_key,
        primary=y_key,
        alpha=alpha,
        adjust=adjust,
        effects=effects,
    )


def compare(summaries: list[Summary]) -> Summary:
    """Several studies' tables as one (a ``study`` column first; each row keeps the delta
    against its own study's baseline); best values and the Pareto front across all rows."""
    found: dict[str, Column] = {}
    for s in summaries:
        for col in s.columns:
            seen = found.setdefault(col.key, col)
            if seen.metric != col.metric:  # e.g. test top-1 in one study, val in another
                title = seen.title.removeprefix("test ").removeprefix("val ")
                found[col.key] = Column(
                    col.key, "", f"{title}, test or val", col.kind, col.maximize, col.scale
                )
    columns = list(found.values())
    config_columns: list[str] = []
    for s in summaries:
        config_columns += [c for c in s.config_columns + list(s.fixed) if c not in config_columns]
    parts = []
    for s in summaries:
        part = s.table.copy()
        for name, value in s.fixed.items():
            part[name] = value
        part.insert(0, "study", s.study)
        part.index = pd.Index([f"{s.study}: {i}" for i in part.index], name="configuration")
        parts.append(part)
    table = pd.concat(parts) if parts else pd.DataFrame()
    first = columns[0].key if columns and columns[0].kind == "acc" else None
    primaries = {s.primary for s in summaries}
    y_key = first if len(primaries) == 1 else None
    x_candidates = [s.pareto_x for s in summaries]
    x_key = x_candidates[0] if x_candidates and len(set(x_candidates)) == 1 else None
    best = _mark(table, columns, x_key, y_key) if len(table) else {}
    counts: dict[str, int] = {}
    for s in summaries:
        for state, n in s.counts.items():
            counts[state] = counts.get(state, 0) + n
    excluded = [s.excluded.assign(study=s.study) for s in summaries if len(s.excluded)]
    baselines = ", ".join(f"{s.study}: {s.baseline}" for s in summaries)
    return Summary(
        study=" vs ".join(s.study for s in summaries),
        table=table,
        columns=columns,
        config_columns=["study", *config_columns],
        best=best,
        baseline=None,
        baseline_reason=f"each study's own ({baselines})",
        counts=counts,
        excluded=pd.concat(excluded, ignore_index=True) if excluded else pd.DataFrame(),
        pareto_x=x_key,
        primary=y_key,
        alpha=summaries[0].alpha if summaries else 0.05,
    )
