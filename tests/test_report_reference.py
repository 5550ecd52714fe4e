"""A run compared with a reference report: accuracy means side by side, differences in points,
only configurations both have; the verdicts against the baseline side by side where both have
statistics; and the CLI writes reference.md and says so."""

from __future__ import annotations

import pandas as pd

from mats_lab.report.reference import (
    compare_verdicts,
    compare_with_reference,
    effect_line,
    find_reference,
    reference_markdown,
    verdicts_markdown,
)


def _table(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"configuration": c, "val/acc/top1.mean": v, "test/acc/top1.mean": t,
             "val/acc/top1.std": 0.1, "train_gmacs.mean": 1.0}
            for c, v, t in rows
        ]
    )  # fmt: skip


def test_the_comparison_pairs_configurations_and_gives_points():
    run = _table([("videomae", 0.50, 0.40), ("mats-0.3", 0.80, 0.70), ("new", 0.9, 0.9)])
    ref = _table([("mats-0.3", 0.74, 0.72), ("videomae", 0.47, 0.44)])
    frame = compare_with_reference(run, ref)
    assert frame["configuration"].tolist() == ["videomae", "videomae", "mats-0.3", "mats-0.3"]
    assert set(frame["metric"]) == {"val/acc/top1", "test/acc/top1"}, "accuracy means only"
    got = {(r.configuration, r.metric): r.difference for r in frame.itertuples()}
    assert got[("videomae", "val/acc/top1")] == 3.0
    assert got[("mats-0.3", "test/acc/top1")] == -2.0
    text = reference_markdown(frame, ref_path := __import__("pathlib").Path("reports"))
    assert f"reference in {ref_path}" in text and "+3.0" in text and "-2.0" in text


def test_no_common_configuration_is_said_plainly(tmp_path):
    frame = compare_with_reference(_table([("a", 0.5, 0.5)]), _table([("b", 0.5, 0.5)]))
    assert frame.empty
    assert "no configuration in common" in reference_markdown(frame, tmp_path)


def test_the_reference_is_found_per_study_or_flat(tmp_path):
    assert find_reference(tmp_path, "keep_ratio") is None
    (tmp_path / "keep_ratio").mkdir()
    (tmp_path / "keep_ratio" / "results.csv").write_text("configuration\n")
    assert find_reference(tmp_path, "keep_ratio") == tmp_path / "keep_ratio" / "results.csv"


def _stats(rows: list[tuple[str, str, str, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"configuration": c, "metric": m, "verdict": v, "p": p} for c, m, v, p in rows]
    )


def test_verdicts_are_paired_by_configuration_and_metric(tmp_path):
    ref = _stats([
        ("base (baseline)", "val/acc/top1", "baseline", None),
        ("a", "val/acc/top1", "worse", 0.02),
        ("a", "test/acc/top1", "no evidence", 0.3),
        ("b", "val/acc/top1", "better", 0.01),
        ("gone", "val/acc/top1", "worse", 0.01),
    ])  # fmt: skip
    run = _stats([
        ("base (baseline)", "val/acc/top1", "baseline", None),
        ("b", "val/acc/top1", "no evidence", 0.08),
        ("a", "val/acc/top1", "worse", 0.004),
        ("a", "test/acc/top1", "no evidence", 0.5),
        ("c", "val/acc/top1", "n<2", None),
    ])  # fmt: skip
    frame = compare_verdicts(run, ref)
    assert list(zip(frame["configuration"], frame["metric"], strict=True)) == [
        ("b", "val/acc/top1"), ("a", "val/acc/top1"), ("a", "test/acc/top1"),
    ], "the run's order; no baseline, no untested row, no row the other lacks"  # fmt: skip
    assert frame["same"].tolist() == [False, True, True]
    assert not frame["opposite"].any(), "no evidence against better is not opposite"
    assert frame["this run"].tolist()[0] == "no evidence (p=0.08)"
    assert frame["reference"].tolist()[1] == "worse (p=0.02)"
    text = verdicts_markdown(frame, tmp_path)
    # a: worse twice is a call both runs made; a/test: no evidence twice is agreement only
    assert frame["called"].tolist() == [False, True, False]
    head = text.splitlines()[0]
    assert head.endswith("2 of 3 the same (1 of them better or worse in both), 0 opposite")
    assert "**no**" in text and "called" not in text
    empty = verdicts_markdown(compare_verdicts(run.head(1), ref), tmp_path)
    assert "none tested in both" in empty
    flipped = run.assign(verdict=["baseline", "worse", "worse", "no evidence", "n<2"])
    flipped_frame = compare_verdicts(flipped, ref)
    assert flipped_frame["opposite"].tolist() == [True, False, False]  # b: better -> worse
    text = verdicts_markdown(flipped_frame, tmp_path)
    assert text.splitlines()[0].endswith(
        "2 of 3 the same (1 of them better or worse in both), 1 opposite"
    )
    assert "**no: opposite**" in text and "opposite |" not in text.splitlines()[2]


def test_effect_verdicts_are_paired_by_factor_change_held_and_metric(tmp_path):
    def effects(rows):
        return pd.DataFrame(
            [
                {"factor": f, "change": c, "held": h, "metric": "val/acc/top1", "verdict": v,
                 "p": p}
                for f, c, h, v, p in rows
            ]
        )  # fmt: skip

    ref = effects([
        ("pretrain", "mats vs none", "keep_ratio=0.3", "no evidence", 0.75),
        ("pretrain", "mats vs none", "keep_ratio=1.0", "worse", 0.001),
        ("keep_ratio", "0.3 vs 1.0", "pretrain=mats", "better", 0.0001),
    ])  # fmt: skip
    run = effects([
        ("keep_ratio", "0.3 vs 1.0", "pretrain=mats", "better", 0.003),
        ("pretrain", "mats vs none", "keep_ratio=1.0", "no evidence", 0.2),
        ("pretrain", "mats vs none", "keep_ratio=0.3", "no evidence", 0.5),
    ])  # fmt: skip
    frame = compare_verdicts(run, ref, name=effect_line)
    assert frame["configuration"].tolist() == [
        "keep_ratio 0.3 vs 1.0, at pretrain=mats",
        "pretrain mats vs none, at keep_ratio=1.0",
        "pretrain mats vs none, at keep_ratio=0.3",
    ]
    assert frame["same"].tolist() == [True, False, True]
    text = verdicts_markdown(frame, tmp_path, "Effects of each factor, the others held")
    assert text.startswith("Effects of each factor, the others held, this run and the reference")
    assert text.splitlines()[0].endswith(
        "2 of 3 the same (1 of them better or worse in both), 0 opposite"
    )
