"""A run compared with a reference report: accuracy means side by side, differences in points,
only configurations both have; and the CLI writes reference.md and says so."""

from __future__ import annotations

import pandas as pd

from mats_lab.report.reference import compare_with_reference, find_reference, reference_markdown


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
