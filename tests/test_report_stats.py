"""The report's statistics on constructed results with known answers: the t interval of a mean
over seeds, the difference paired by seed with its interval and paired t-test, the verdicts,
the "best" rule, a 2-factor study compared row by row with its baseline, and a one-seed study
that ranks nothing.

Known answers come from tables and closed forms, not from scipy: the t quantiles
t(0.975, 2) = 4.302653, t(0.95, 2) = 2.919986, t(0.975, 3) = 3.182446; the two-sided p-value
of Student's t with 2 degrees of freedom is ``1 - t / sqrt(2 + t^2)``, with 3 degrees of freedom
``1 - (2/pi) (x / (1 + x^2) + atan(x))`` with ``x = t / sqrt(3)``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mats_lab.cli.main import app
from mats_lab.report import index, stats_table, tables
from mats_lab.report.stats import (
    Paired,
    adjust_p,
    paired,
    paired_power,
    paired_rows,
    seed_interval,
    seed_table,
    seeds_for_power,
    verdict,
)
from mats_lab.report.summarise import summarise

T975_2, T95_2, T975_3 = 4.302653, 2.919986, 3.182446


def p_df2(t: float) -> float:
    return 1 - abs(t) / math.sqrt(2 + t * t)


def p_df3(t: float) -> float:
    x = abs(t) / math.sqrt(3)
    return 1 - 2 / math.pi * (x / (1 + x * x) + math.atan(x))


# -- one configuration: mean, std, interval --------------------------------------------------


def test_interval_of_the_mean_over_seeds():
    ci = seed_interval(np.array([1.0, 2.0, 3.0]))
    assert (ci.mean, ci.std, ci.n) == (2.0, 1.0, 3)
    half = T975_2 / math.sqrt(3)  # t(0.975, 2) * std / sqrt(n)
    assert ci.low == pytest.approx(2 - half, abs=1e-5) and ci.high == pytest.approx(
        2 + half, abs=1e-5
    )
    ci90 = seed_interval(np.array([1.0, 2.0, 3.0]), alpha=0.10)
    assert ci90.high - ci90.mean == pytest.approx(T95_2 / math.sqrt(3), abs=1e-5)


def test_interval_needs_two_seeds_and_ignores_missing_values():
    one = seed_interval(np.array([0.7, np.nan]))
    assert one.n == 1 and one.mean == 0.7
    assert math.isnan(one.std) and math.isnan(one.low) and math.isnan(one.high)
    assert seed_interval(np.array([])).n == 0
    same = seed_interval(np.array([5.0, 5.0]))  # a counted cost: no spread, the point itself
    assert (same.std, same.low, same.high) == (0.0, 5.0, 5.0)


# -- against the baseline: paired by seed ----------------------------------------------------

BASE = pd.Series([0.50, 0.52, 0.54, 0.56], index=[0, 1, 2, 3])


def test_paired_difference_interval_and_test():
    # seed 4 has no baseline partner: left out; differences 0.10, 0.12, 0.08, 0.10
    config = pd.Series([0.60, 0.64, 0.62, 0.66, 0.99], index=[0, 1, 2, 3, 4])
    result = paired(config, BASE)
    assert result.pairs == 4 and result.diff == pytest.approx(0.10)
    se = math.sqrt(0.0008 / 3) / 2  # sample std of the differences / sqrt(4)
    assert result.low == pytest.approx(0.10 - T975_3 * se, abs=1e-6)
    assert result.high == pytest.approx(0.10 + T975_3 * se, abs=1e-6)
    assert result.p == pytest.approx(p_df3(0.10 / se), rel=1e-4)  # t = 12.25, p = 0.0012
    assert verdict(result, maximize=True) == "better"
    assert verdict(result, maximize=False) == "worse"  # a cost that went up
    assert verdict(result, maximize=True, alpha=0.001) == "no evidence"  # p = 0.0012


def test_seeds_for_power_matches_the_published_sample_sizes():
    """The paired (one-sample) t-test's sample sizes for 80 % power at alpha 0.05, two-sided,
    from G*Power's tables (Faul et al.): effect size d = 0.5 -> 34, 0.8 -> 15, 1.0 -> 10;
    the scale of the difference does not matter, only diff / sd."""
    got = seeds_for_power(np.array([0.5, 0.8, 1.0, -0.05]), np.array([1.0, 1.0, 1.0, 0.05]))
    assert got.tolist() == [34, 15, 10, 10]
    # a smaller alpha, more power: more seeds
    assert seeds_for_power(np.array([0.5]), np.array([1.0]), alpha=0.01, power=0.9)[0] > 34
    # no spread: 2 seeds decide; no difference, or one too small for 200 seeds: never
    assert seeds_for_power(np.array([0.1, 0.0, 0.1]), np.array([0.0, 1.0, 1.0])).tolist() == [
        2, math.inf, math.inf,
    ]  # fmt: skip
    assert math.isnan(seeds_for_power(np.array([np.nan]), np.array([1.0]))[0])
    # the paired test's own figure: differences 0.10, 0.12, 0.08, 0.10 (d = 6.1): 3 seeds
    assert paired(pd.Series([0.60, 0.64, 0.62, 0.66], index=[0, 1, 2, 3]), BASE).seeds_80 == 3


def test_power_of_the_paired_test_matches_the_published_figures():
    """G*Power's "actual power" for those sample sizes: d = 1.0 with 10 pairs 0.803, d = 0.5
    with 34 pairs 0.808; one pair fewer falls below 0.8; no effect: the test's own alpha."""
    got = paired_power(np.array([1.0, -0.5]), np.array([10, 34]))
    assert got == pytest.approx([0.803, 0.808], abs=0.002)
    assert (paired_power(np.array([1.0, 0.5]), np.array([9, 33])) < 0.8).all()
    assert paired_power(np.array([0.0, 0.0]), 5, alpha=0.01) == pytest.approx([0.01, 0.01])


def test_a_seed_run_twice_counts_once_with_its_mean():
    values = pd.Series([0.60, 0.63, 0.65, 0.62, 0.1, np.nan])
    rows = pd.Series(["a", "a", "a", "a", "b", "b"])
    seeds = pd.Series([0, 1, 1, 2, None, 0], dtype="Int64")
    table = seed_table(values, rows, seeds)
    assert table.loc["a"].to_dict() == pytest.approx({0: 0.60, 1: 0.64, 2: 0.62})
    assert "b" not in table.index  # no seed, or no value: nothing to pair


def test_rows_with_different_seeds_are_each_paired_on_their_own_seeds():
    table = pd.DataFrame(
        [
            [0.60, 0.64, 0.62, 0.66],  # every seed: differences 0.10, 0.12, 0.08, 0.10
            [0.60, 0.64, 0.62, np.nan],  # seeds 0-2: differences 0.10, 0.12, 0.08
            [np.nan, 0.70, np.nan, np.nan],  # one pair: no test
            [0.55, 0.57, 0.59, 0.61],  # +0.05 in every pair: exact
        ],
        index=["all", "three", "one", "exact"],
        columns=[0, 1, 2, 3],
    )
    out = paired_rows(table, BASE)
    assert out["pairs"].tolist() == [4, 3, 1, 4]
    assert out["diff"].tolist() == pytest.approx([0.10, 0.10, 0.18, 0.05])
    assert out.loc["all", "p"] == pytest.approx(p_df3(0.10 / (math.sqrt(0.0008 / 3) / 2)), rel=1e-4)
    assert out.loc["three", "p"] == pytest.approx(p_df2(0.10 / (0.02 / math.sqrt(3))), rel=1e-4)
    assert out.loc["three", "high"] == pytest.approx(0.10 + T975_2 * 0.02 / math.sqrt(3), abs=1e-6)
    assert math.isnan(out.loc["one", "p"]) and math.isnan(out.loc["one", "low"])
    assert out.loc["exact", ["low", "high", "p"]].tolist() == pytest.approx([0.05, 0.05, 0.0])


def test_fewer_than_two_pairs_is_no_test():
    one = paired(pd.Series([0.9, 0.8], index=[0, 7]), BASE)  # only seed 0 is shared
    assert one.pairs == 1 and one.diff == pytest.approx(0.4) and math.isnan(one.p)
    assert verdict(one, maximize=True) == "n<2"
    none = paired(pd.Series([0.9], index=[9]), BASE)
    assert none.pairs == 0 and verdict(none, maximize=True) == "n<2"


def test_a_difference_without_spread_is_exact():
    cheaper = paired(pd.Series([6.0, 6.0], index=[0, 1]), pd.Series([10.0, 10.0], index=[0, 1]))
    assert (cheaper.diff, cheaper.low, cheaper.high, cheaper.p) == (-4.0, -4.0, -4.0, 0.0)
    assert verdict(cheaper, maximize=False) == "better"
    equal = paired(pd.Series([6.0, 6.0], index=[0, 1]), pd.Series([6.0, 6.0], index=[0, 1]))
    assert equal.p == 1.0 and verdict(equal, maximize=False) == "no evidence"
    assert verdict(Paired(3, 0.0, -1.0, 1.0, 0.01), maximize=True) == "no evidence"


# -- a 2-factor study: recipe x keep ratio, every row against the baseline ---------------------


def tidy(rows: list[tuple[str, float, int, float]]) -> pd.DataFrame:
    """A trial frame as :mod:`mats_lab.report.collect` gives it, from ``(recipe, keep_ratio,
    seed, top-1)``; fine-tuning GMACs 10 * keep_ratio."""
    records = []
    for number, (recipe, keep, seed, top1) in enumerate(rows):
        records.append(
            {
                "study": "2f", "trial": number, "state": "COMPLETE", "seed": seed,
                "point_key": f"{recipe}-{keep}-{seed}", "sweep": "s", "failure": "", "error": "",
                "run_id": "", "source": "optuna", "params.recipe": recipe,
                "params.keep_ratio": keep, "metrics.test/acc/top1": top1,
                "metrics.test_gmacs": 10.0 * keep,
            }
        )  # fmt: skip
    frame = pd.DataFrame(records)
    frame["seed"] = frame["seed"].astype("Int64")
    return frame


TOP1 = {
    ("videomae", 1.0): [0.50, 0.52, 0.54],
    ("videomae", 0.5): [0.41, 0.42, 0.44],  # -0.09, -0.10, -0.10
    ("mats", 1.0): [0.60, 0.64, 0.62],  # +0.10, +0.12, +0.08
    ("mats", 0.5): [0.53, 0.51, 0.58],  # +0.03, -0.01, +0.04
}


def two_factor(top1=TOP1, seeds=(0, 1, 2), **kwargs):
    rows = [
        (recipe, keep, seed, value)
        for (recipe, keep), values in top1.items()
        for seed, value in zip(seeds, values, strict=False)
    ]
    return summarise(tidy(rows), ["recipe", "keep_ratio"], stage_names=["finetune"], **kwargs)


def test_two_factor_study_every_row_against_the_one_baseline():
    s = two_factor()
    base = "recipe=videomae, keep_ratio=1.0"
    assert s.baseline == base and s.table["baseline"].sum() == 1
    t = s.table
    row = t.loc["recipe=mats, keep_ratio=1.0"]
    se = 0.02 / math.sqrt(3)  # differences 0.10, 0.12, 0.08: std 0.02
    assert row["top1.pairs"] == 3 and row["top1.diff"] == pytest.approx(0.10)
    assert row["top1.diff_lo"] == pytest.approx(0.10 - T975_2 * se, abs=1e-6)
    assert row["top1.p"] == pytest.approx(p_df2(0.10 / se), rel=1e-4)  # 0.013
    assert row["top1.ci_lo"] == pytest.approx(0.62 - T975_2 * 0.02 / math.sqrt(3), abs=1e-6)
    mixed = t.loc["recipe=mats, keep_ratio=0.5"]
    assert mixed["top1.diff"] == pytest.approx(0.02)
    assert mixed["top1.p"] == pytest.approx(p_df2(0.02 / (math.sqrt(0.0007) / math.sqrt(3))))
    assert t["top1.verdict"].to_dict() == {
        base: "baseline",
        "recipe=videomae, keep_ratio=0.5": "worse",
        "recipe=mats, keep_ratio=1.0": "better",
        "recipe=mats, keep_ratio=0.5": "no evidence",
    }
    assert s.best["top1"] == ["recipe=mats, keep_ratio=1.0"]
    # a stricter level: p = 0.013 is no longer enough, and nothing is bold
    strict = two_factor(alpha=0.01)
    assert strict.table.loc["recipe=mats, keep_ratio=1.0", "top1.verdict"] == "no evidence"
    assert "top1" not in strict.best and strict.alpha == 0.01


def test_each_factor_is_paired_with_its_control_the_others_held():
    """The effects table: recipe changed at each keep ratio, keep ratio changed at each recipe,
    each against the configuration that differs in that factor only (the baseline's level)."""
    e = two_factor().effects
    top1 = e[e["metric"] == "test/acc/top1"].set_index(["factor", "held"])
    assert sorted(top1.index) == [
        ("keep_ratio", "recipe=mats"), ("keep_ratio", "recipe=videomae"),
        ("recipe", "keep_ratio=0.5"), ("recipe", "keep_ratio=1.0"),
    ]  # fmt: skip
    # recipe at keep 0.5: mats/0.5 - videomae/0.5 = 0.12, 0.09, 0.14 (not against the baseline)
    at_half = top1.loc[("recipe", "keep_ratio=0.5")]
    assert (at_half["change"], at_half["control"]) == ("mats vs videomae", "recipe=videomae, "
                                                       "keep_ratio=0.5")  # fmt: skip
    se = math.sqrt(((0.12 - 0.35 / 3) ** 2 + (0.09 - 0.35 / 3) ** 2 + (0.14 - 0.35 / 3) ** 2) / 2)
    se /= math.sqrt(3)
    assert at_half["diff"] == pytest.approx(0.35 / 3)
    assert at_half["diff_lo"] == pytest.approx(0.35 / 3 - T975_2 * se, abs=1e-6)
    assert at_half["p"] == pytest.approx(p_df2(0.35 / 3 / se), rel=1e-4)
    assert at_half["verdict"] == "better"
    # keep ratio after mats: 0.53 - 0.60, 0.51 - 0.64, 0.58 - 0.62 = -0.07, -0.13, -0.04
    after_mats = top1.loc[("keep_ratio", "recipe=mats")]
    se = math.sqrt((0.01**2 + 0.05**2 + 0.04**2) / 2) / math.sqrt(3)
    assert after_mats["diff"] == pytest.approx(-0.08)
    assert after_mats["p"] == pytest.approx(p_df2(0.08 / se), rel=1e-4)  # 0.094
    assert after_mats["verdict"] == "no evidence"
    # where the control is the baseline, the line is the statistics table's row
    at_one = top1.loc[("recipe", "keep_ratio=1.0")]
    row = two_factor().table.loc["recipe=mats, keep_ratio=1.0"]
    assert (at_one["diff"], at_one["p"]) == (row["top1.diff"], row["top1.p"])
    one_factor = summarise(
        tidy([("videomae", 1.0, s, v) for s, v in enumerate([0.5, 0.6])]
             + [("mats", 1.0, s, v) for s, v in enumerate([0.7, 0.8])]),
        ["recipe", "keep_ratio"], stage_names=["finetune"],
    )  # fmt: skip
    assert one_factor.effects.empty  # keep_ratio is the same everywhere: nothing to separate


def test_best_goes_to_the_best_mean_among_the_better_rows_only():
    better_twice = dict(TOP1)
    better_twice[("mats", 0.5)] = [0.70, 0.90, 0.60]  # higher mean, but too noisy to be better
    better_twice[("videomae", 0.5)] = [0.55, 0.58, 0.59]  # +0.05, +0.06, +0.05: better
    s = two_factor(better_twice)
    verdicts = s.table["top1.verdict"]
    assert verdicts["recipe=mats, keep_ratio=0.5"] == "no evidence"
    assert verdicts["recipe=videomae, keep_ratio=0.5"] == "better"
    assert s.best["top1"] == ["recipe=mats, keep_ratio=1.0"]  # 0.62 beats 0.573


def test_the_baseline_is_best_when_every_other_row_is_worse():
    worse = {
        ("videomae", 1.0): [0.50, 0.52, 0.54],
        ("mats", 0.5): [0.41, 0.42, 0.44],
        ("mats", 0.3): [0.30, 0.33, 0.31],
    }
    s = two_factor(worse)
    assert set(s.table["top1.verdict"]) == {"baseline", "worse"}
    assert s.best["top1"] == ["recipe=videomae, keep_ratio=1.0"]
    # the cheaper rows cost less in every pair: exact differences, the cheapest is best
    assert s.best["finetune_gmacs"] == ["recipe=mats, keep_ratio=0.3"]


def test_one_seed_per_configuration_ranks_nothing():
    s = two_factor(seeds=(0,))
    assert s.ranks_nothing() and len(s.few_seeds()) == 4
    assert s.best == {}
    assert set(s.table["top1.verdict"]) == {"baseline", "n<2"}
    markdown = tables.to_markdown(s)
    assert "**" not in markdown and "n<2" in markdown
    assert "ranks nothing" in index.seed_notes(s)[0]
    assert "ranks nothing" in index._legend(s)
    assert "nothing is ranked" in index.table_caption(s)
    assert r"\textbf" not in tables.to_latex(s)


def test_a_single_seeded_baseline_leaves_every_row_untested():
    top1 = dict(TOP1)
    rows = [
        (recipe, keep, seed, value)
        for (recipe, keep), values in top1.items()
        for seed, value in enumerate(values[:1] if recipe == "videomae" and keep == 1.0 else values)
    ]
    s = summarise(tidy(rows), ["recipe", "keep_ratio"], stage_names=["finetune"])
    assert not s.ranks_nothing() and s.few_seeds() == ["recipe=videomae, keep_ratio=1.0"]
    assert set(s.table["top1.verdict"]) == {"baseline", "n<2"} and "top1" not in s.best
    assert "the baseline among them" in index.seed_notes(s)[0]


def test_alpha_outside_zero_and_one_is_refused():
    with pytest.raises(ValueError, match="alpha 1.5 must lie between 0 and 1"):
        two_factor(alpha=1.5)


# -- corrections for the number of tests (--adjust) ------------------------------------------


def holm_by_hand(p: list[float]) -> list[float]:
    """Holm's step-down adjustment, the textbook way: the i-th smallest of m p-values times
    (m - i), then the running maximum, capped at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def test_adjusted_p_values_holm_and_benjamini_hochberg():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.02])  # NaN: a line without a test, not counted
    holm = adjust_p(p, "holm")
    # sorted 0.01, 0.02, 0.03, 0.04 -> 4 x 0.01, 3 x 0.02, 2 x 0.03, 1 x 0.04, running max
    assert np.isnan(holm[2]) and holm[[0, 1, 3, 4]] == pytest.approx([0.04, 0.06, 0.06, 0.06])
    # Benjamini-Hochberg: p_(i) m / i from the largest down, running min: 0.04 everywhere
    bh = adjust_p(p, "bh")
    assert np.isnan(bh[2]) and bh[[0, 1, 3, 4]] == pytest.approx([0.04] * 4)
    assert adjust_p(np.array([0.01, 0.02, 0.03]), "bh") == pytest.approx([0.03] * 3)
    assert adjust_p(np.array([0.5, 0.9]), "holm") == pytest.approx([1.0, 1.0])  # capped at 1
    none = adjust_p(p, "none")
    assert np.array_equal(none, p, equal_nan=True) and none is not p
    assert np.isnan(adjust_p(np.array([np.nan]), "holm")).all()
    with pytest.raises(ValueError, match="adjustment 'bonferroni': choose one of none, holm, bh"):
        adjust_p(p, "bonferroni")


def test_holm_turns_a_borderline_row_into_no_evidence_and_takes_its_bold():
    """At alpha 0.02 the mats / keep 1.0 row (raw p 0.013) is better on its own; among the
    study's three tests Holm needs p < 0.02 / 2 for the second smallest: no evidence, no bold."""
    plain = two_factor(alpha=0.02)
    holm = two_factor(alpha=0.02, adjust="holm")
    mats = "recipe=mats, keep_ratio=1.0"
    assert plain.table.loc[mats, "top1.verdict"] == "better" and plain.best["top1"] == [mats]
    raw = plain.table["top1.p"].drop(plain.baseline)
    t = holm.table.drop(holm.baseline)
    assert t["top1.p_raw"].tolist() == pytest.approx(raw.tolist())  # the tests' own p kept
    assert t["top1.p"].tolist() == pytest.approx(holm_by_hand(raw.tolist()))
    assert t.loc[mats, "top1.p"] == pytest.approx(2 * raw[mats])  # 0.026
    assert t["top1.verdict"].to_dict() == {
        "recipe=videomae, keep_ratio=0.5": "worse",  # 3 x 0.0012 = 0.0036: still worse
        mats: "no evidence",
        "recipe=mats, keep_ratio=0.5": "no evidence",
    }
    assert "top1" not in holm.best and holm.adjust == "holm"
    # the intervals stay each at 98 % on its own: this one still leaves out zero
    assert t.loc[mats, "top1.diff_lo"] == plain.table.loc[mats, "top1.diff_lo"] > 0
    # the effect lines of one metric are one family of their own (4 lines here)
    e_plain, e_holm = two_factor(alpha=0.02).effects, holm.effects
    assert e_holm["p_raw"].tolist() == pytest.approx(e_plain["p"].tolist())
    assert e_holm["p"].tolist() == pytest.approx(holm_by_hand(e_plain["p"].tolist()))
    assert e_plain["verdict"].tolist() == ["better", "better", "worse", "no evidence"]
    assert e_holm["verdict"].tolist() == ["no evidence", "no evidence", "worse", "no evidence"]
    with pytest.raises(ValueError, match="adjustment 'sidak'"):
        two_factor(adjust="sidak")


def test_an_adjusted_report_says_so_in_its_tables_and_page(tmp_path):
    from mats_lab.report import build, pages

    s = two_factor(adjust="holm")
    report = build.Report("2f", tmp_path / "2f", s)
    build.write_tables(report, build.ReportOptions(out=tmp_path, adjust="holm"), "caption")
    stats = pd.read_csv(tmp_path / "2f" / "stats.csv")
    assert {"p", "p_raw"} <= set(stats.columns)
    assert "p (paired t, Holm)" in (tmp_path / "2f" / "stats.md").read_text()
    effects = pd.read_csv(tmp_path / "2f" / "effects.csv")
    assert (effects["p"] >= effects["p_raw"]).all() and "p (paired t, Holm)" in (
        tmp_path / "2f" / "effects.md"
    ).read_text()
    blocks = index.index_blocks(
        s, markdown=report.markdown, html=report.html,
        stats=(report.stats_markdown, report.stats_html),
        effects=(report.effects_markdown, report.effects_html), notes=[],
        command="mats-lab report 2f --adjust holm", formats=build.FORMATS,
    )  # fmt: skip
    page = pages.page_markdown(blocks)
    assert "Holm-adjusted over each metric's rows (`--adjust holm`)" in page
    assert "Holm-adjusted over each metric's lines" in page and "(unadjusted)" in page
    plain = two_factor()
    assert "without correction for the number of rows" in index._legend(plain)
    assert "p_raw" not in stats_table.frame(plain).columns


# -- the statistics table ----------------------------------------------------------------------


def test_statistics_table_numbers_and_cells():
    s = two_factor()
    raw = stats_table.frame(s).set_index("configuration")
    assert list(raw["metric"].unique()) == ["test/acc/top1"]  # verdicts: accuracy only
    assert raw.loc["recipe=mats, keep_ratio=1.0", "diff"] == pytest.approx(0.10)
    assert raw.loc["recipe=mats, keep_ratio=1.0", "verdict"] == "better"
    headers, rows = stats_table.grid(s)
    assert headers[4] == "95 % CI" and headers[-1] == "verdict"
    cells = {r[0].text: [c.text for c in r] for r in rows}
    mats = cells["recipe=mats, keep_ratio=1.0"]
    assert mats[2:5] == ["3", "62.0 ± 2.0", "[57.0, 67.0]"]
    # differences +0.10, +0.12, +0.08: effect size 5, so 3 seeds give 80 % power
    assert mats[5:] == ["3", "+10.0", "[+5.0, +15.0]", "0.013", "3", "better"]
    assert headers[-2] == "seeds for 80 % power"
    assert cells["recipe=videomae, keep_ratio=1.0 (baseline)"][-1] == "baseline"
    markdown = tables.markdown_table(headers, rows)
    assert "| recipe=mats, keep_ratio=1.0" in markdown and "[+5.0, +15.0]" in markdown


# -- the command line --------------------------------------------------------------------------


def test_cli_passes_alpha_and_refuses_a_bad_one(monkeypatch):
    import mats_lab.report.build as build

    seen = []
    monkeypatch.setattr(build, "run_report", lambda arguments, options, echo: seen.append(options))
    result = CliRunner().invoke(app, ["report", "some-study", "--alpha", "0.01"])
    assert result.exit_code == 0, result.output
    assert seen[0].alpha == 0.01 and "--alpha 0.01" in seen[0].command
    bad = CliRunner().invoke(app, ["report", "some-study", "--alpha", "1.5"])
    assert bad.exit_code != 0 and "--alpha 1.5" in bad.output


def test_cli_passes_adjust_and_refuses_an_unknown_one(monkeypatch):
    import mats_lab.report.build as build

    seen = []
    monkeypatch.setattr(build, "run_report", lambda arguments, options, echo: seen.append(options))
    result = CliRunner().invoke(app, ["report", "some-study", "--adjust", "holm"])
    assert result.exit_code == 0, result.output
    assert seen[0].adjust == "holm" and "--adjust holm" in seen[0].command
    assert CliRunner().invoke(app, ["report", "x"]).exit_code == 0 and seen[1].adjust == "none"
    assert "--adjust" not in seen[1].command
    bad = CliRunner().invoke(app, ["report", "some-study", "--adjust", "bonferroni"])
    assert bad.exit_code != 0
    assert "--adjust bonferroni: choose one of none, holm, bh" in bad.output


def test_one_seed_report_files_say_so_and_mark_no_winner(tmp_path):
    from mats_lab.report import build, pages

    s = two_factor(seeds=(0,))
    report = build.Report("2f", tmp_path / "2f", s)
    files = build.write_tables(report, build.ReportOptions(out=tmp_path), "caption")
    assert sorted(f.name for f in files) == sorted(
        f"{kind}.{fmt}" for kind in ("results", "stats", "effects") for fmt in build.FORMATS
    )
    effects = pd.read_csv(tmp_path / "2f" / "effects.csv")  # two factors: each one untested
    assert set(effects["verdict"]) == {"n<2"} and effects["p"].isna().all()
    results = (tmp_path / "2f" / "results.md").read_text()
    assert "**" not in results and "<strong>" not in report.html
    blocks = index.index_blocks(
        s,
        markdown=report.markdown,
        html=report.html,
        stats=(report.stats_markdown, report.stats_html),
        notes=index.seed_notes(s),
        command="mats-lab report 2f",
        formats=build.FORMATS,
    )
    page = pages.page_markdown(blocks)
    assert "One seed per configuration: this table ranks nothing." in page
    assert "## Statistics against the baseline" in page and "| n<2 " in page
    assert "[Markdown](stats.md) · [CSV](stats.csv)" in page
    html = pages.page_html("2f", blocks)
    ids = re.findall(r' id="([^"]+)"', html)
    assert sorted(ids) == ["T_results", "T_stats"]  # two tables on one page, distinct ids
    stats = pd.read_csv(tmp_path / "2f" / "stats.csv")
    assert set(stats["verdict"]) == {"baseline", "n<2"} and stats["p"].isna().all()
