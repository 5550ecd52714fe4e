"""``mats-lab report STUDY --trials A --trials B``: a study's report from the ``trials.csv`` of
earlier reports, and two runs with different seed sets pooled into one table whose paired
statistics run over all their seeds; what cannot be pooled is refused with the file named.

Known answers: with differences +5, +7, +6, +8, +4, +6 points over 6 seeds the paired mean is
6, the sample std sqrt(2), and the 95 % interval 6 +- t(0.975, 5) sqrt(2) / sqrt(6) with
t(0.975, 5) = 2.570582 (a table value, not scipy).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mats_lab.cli.main import app
from mats_lab.report.trial_tables import TrialTableError, pool, read_table

REPO = Path(__file__).resolve().parents[1]
POOLED = REPO / "studies" / "keep_ratio_factorial_pooled.yaml"  # seeds 0-5, 3 x 3 grid
T975_5 = 2.570582

BASE = [70.0, 72.0, 68.0, 75.0, 71.0, 69.0]  # pretrain=none, keep 1.0, seeds 0-5
MATS = [5.0, 7.0, 6.0, 8.0, 4.0, 6.0]  # pretrain=mats, keep 0.3, minus the baseline
VIDEOMAE = [3.0, -3.0, 2.0, -2.0, 1.0, -1.0]  # pretrain=videomae, keep 1.0: no effect


def write_run(path: Path, study: str, seeds: range) -> Path:
    """A ``trials.csv`` as a report writes it: four configurations, the given seeds."""
    rows = []
    arms = [("none", 1.0, [0.0] * 6), ("none", 0.3, [0.0] * 6), ("mats", 0.3, MATS),
            ("videomae", 1.0, VIDEOMAE)]  # fmt: skip
    for pretrain, keep, diffs in arms:
        for seed in seeds:
            top1 = (BASE[seed % 6] + diffs[seed % 6]) / 100
            rows.append(
                {
                    "study": study, "trial": len(rows), "state": "COMPLETE", "seed": seed,
                    "point_key": f"{pretrain}-{keep}-{seed}", "sweep": "s1", "failure": "",
                    "error": "", "run_id": f"r{len(rows)}", "source": "mlflow",
                    "machine": "cpu", "params.keep_ratio": keep, "params.pretrain": pretrain,
                    "metrics.val/acc/top1": top1, "metrics.test/acc/top1": top1,
                }
            )  # fmt: skip
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path / "trials.csv", index=False, float_format="%.12g")
    return path


def report(tmp_path: Path, *arguments: str):
    return CliRunner().invoke(
        app, ["report", str(POOLED), "--out", str(tmp_path / "out"), "--no-tokens", *arguments]
    )


def test_two_runs_pool_into_one_six_seed_report(tmp_path):
    first = write_run(tmp_path / "first", "factorial", range(0, 3))
    second = write_run(tmp_path / "second", "factorial_replica", range(3, 6))
    result = report(tmp_path, "--trials", str(first), "--trials", str(second / "trials.csv"))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "keep_ratio_factorial_pooled"
    stats = pd.read_csv(folder / "stats.csv")
    val = stats[stats["metric"] == "val/acc/top1"].set_index("configuration")
    mats = val.loc["pretrain=mats, keep_ratio=0.3"]
    assert mats["n"] == 6 and mats["pairs"] == 6
    assert mats["diff"] == pytest.approx(0.06)
    half = T975_5 * math.sqrt(2) / math.sqrt(6) / 100
    assert mats["diff_lo"] == pytest.approx(0.06 - half, abs=1e-5)
    assert mats["diff_hi"] == pytest.approx(0.06 + half, abs=1e-5)
    assert mats["verdict"] == "better"
    assert val.loc["pretrain=videomae, keep_ratio=1.0", "verdict"] == "no evidence"
    assert val.loc["pretrain=none, keep_ratio=1.0", "verdict"] == "baseline"
    trials = pd.read_csv(folder / "trials.csv")
    assert len(trials) == 24 and trials["trial"].is_unique  # renumbered, origins kept
    assert set(trials["study"]) == {"factorial", "factorial_replica"}
    page = (folder / "index.md").read_text()
    assert "Numbers from trial tables (2 runs pooled)" in page
    assert "--trials" in page and "--no-tokens" in page  # the command, to rerun as it ran
    assert "## The effect of each factor, the others held" in page
    assert "pre-training fit" not in page  # these trials logged no `explained`
    effects = pd.read_csv(folder / "effects.csv")
    line = effects[(effects["metric"] == "val/acc/top1") & (effects["factor"] == "pretrain")]
    line = line.set_index("held").loc["keep_ratio=0.3"]  # MATS vs none, both at keep 0.3
    assert (line["control"], line["pairs"]) == ("pretrain=none, keep_ratio=0.3", 6)
    assert line["diff"] == pytest.approx(0.06)  # none/0.3 equals none/1.0 here, seed by seed


def test_the_page_says_how_much_each_pre_training_learned(tmp_path):
    first = write_run(tmp_path / "first", "factorial", range(0, 3))
    trials = pd.read_csv(first / "trials.csv")
    explained = {"mats": [0.0002, -0.0005, 0.0001], "videomae": [0.25, 0.30, 0.35]}
    trials["metrics.pretrain/train/explained"] = [
        explained[row.pretrain][row.seed] if row.pretrain in explained else float("nan")
        for row in trials.rename(columns={"params.pretrain": "pretrain"}).itertuples()
    ]
    trials.to_csv(first / "trials.csv", index=False)
    result = report(tmp_path, "--trials", str(first))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "keep_ratio_factorial_pooled" / "index.md").read_text()
    (note,) = [line for line in page.splitlines() if "pre-training fit" in line]
    assert "`pretrain`: pretrain=mats, keep_ratio=0.3 0.0 % (3)" in note  # not -0.0
    assert "pretrain=videomae, keep_ratio=1.0 30.0 % (3)" in note
    assert "pretrain=none" not in note  # trained from scratch: nothing to say


def test_one_table_re_reports_a_run_without_its_stores(tmp_path):
    first = write_run(tmp_path / "first", "factorial", range(0, 3))
    result = report(tmp_path, "--trials", str(first), "--alpha", "0.01")
    assert result.exit_code == 0, result.output
    stats = pd.read_csv(tmp_path / "out" / "keep_ratio_factorial_pooled" / "stats.csv")
    tested = stats[stats["verdict"] != "baseline"]
    assert set(tested["pairs"]) == {3} and set(stats["n"]) == {3}


def test_a_seed_in_both_tables_is_refused_naming_both(tmp_path):
    first = write_run(tmp_path / "first", "factorial", range(0, 3))
    again = write_run(tmp_path / "again", "factorial", range(2, 5))
    result = report(tmp_path, "--trials", str(first), "--trials", str(again))
    assert result.exit_code != 0
    text = " ".join(result.output.split())
    assert "seed 2" in text and "first" in text and "again" in text
    assert not (tmp_path / "out" / "keep_ratio_factorial_pooled").exists()


def test_rows_of_another_study_are_refused(tmp_path):
    run = write_run(tmp_path / "run", "factorial", range(4, 7))  # seed 6: not in the study
    result = report(tmp_path, "--trials", str(run))
    assert result.exit_code != 0 and "seed 6" in result.output
    frame = read_table(run)
    with pytest.raises(TrialTableError, match="pretrain='scratch'"):
        pool([(run, frame.assign(**{"params.pretrain": "scratch"}))], ["pretrain"],
             values={"pretrain": ["videomae", "mats", "none"]})  # fmt: skip
    with pytest.raises(TrialTableError, match="variable.*recipe"):
        pool([(run, frame)], ["recipe"])


def test_unreadable_tables_name_the_file(tmp_path):
    missing = report(tmp_path, "--trials", str(tmp_path / "nowhere"))
    assert missing.exit_code != 0 and "nowhere" in missing.output
    other = tmp_path / "results.csv"
    other.write_text("configuration,val top-1\na,1\n")
    result = report(tmp_path, "--trials", str(other))
    assert result.exit_code != 0 and "results.csv" in result.output and "lacks" in result.output
    bad = write_run(tmp_path / "bad", "factorial", range(0, 3)) / "trials.csv"
    bad.write_text(bad.read_text().replace("0.7,0.7", "high,0.7", 1))
    result = report(tmp_path, "--trials", str(bad))
    assert result.exit_code != 0 and "line 2" in result.output and "'high'" in result.output


def test_trials_need_exactly_one_study(tmp_path):
    first = write_run(tmp_path / "first", "factorial", range(0, 3))
    out = ["--out", str(tmp_path / "out"), "--trials", str(first)]
    none = CliRunner().invoke(app, ["report", *out])
    assert none.exit_code != 0 and "exactly one study file" in " ".join(none.output.split())
    two = CliRunner().invoke(app, ["report", str(POOLED), str(POOLED), *out])
    assert two.exit_code != 0


def test_three_tables_are_numbered_one_after_another(tmp_path):
    runs = [
        (tmp_path / n, read_table(write_run(tmp_path / n, n, range(2 * i, 2 * i + 2))))
        for i, n in enumerate(("a", "b", "c"))
    ]
    pooled = pool(runs, ["pretrain", "keep_ratio"], seeds=list(range(6)))
    assert pooled["trial"].tolist() == list(range(24))  # 8 rows a table, no gaps
    assert pooled.groupby("study")["trial"].min().to_dict() == {"a": 0, "b": 8, "c": 16}


def test_a_written_table_reads_back_as_the_same_trials(tmp_path):
    first = write_run(tmp_path / "first", "factorial", range(0, 3))
    frame = read_table(first)
    assert frame["seed"].dtype == "Int64" and frame["params.keep_ratio"].tolist()[:1] == [1.0]
    assert frame["metrics.val/acc/top1"].dtype == "float64"
    assert frame.loc[0, "error"] == "" and frame.loc[6, "params.pretrain"] == "mats"


def test_the_committed_pooled_report_follows_from_the_committed_runs(tmp_path, monkeypatch):
    """reports/keep_ratio_factorial_pooled/ is the 6-seed analysis of the two committed 3-seed
    runs: rebuilt from their trial tables, its statistics are the committed ones."""
    monkeypatch.chdir(REPO)
    runs = [f"reports/{name}" for name in ("keep_ratio_factorial", "keep_ratio_factorial_replica")]
    result = report(tmp_path, "--trials", runs[0], "--trials", runs[1])
    assert result.exit_code == 0, result.output
    rebuilt = pd.read_csv(tmp_path / "out" / "keep_ratio_factorial_pooled" / "stats.csv")
    committed = pd.read_csv(REPO / "reports" / "keep_ratio_factorial_pooled" / "stats.csv")
    pd.testing.assert_frame_equal(rebuilt, committed, rtol=1e-9)
    assert set(rebuilt["n"]) == {6}
    effects = [
        pd.read_csv(folder / "keep_ratio_factorial_pooled" / "effects.csv")
        for folder in (tmp_path / "out", REPO / "reports")
    ]
    pd.testing.assert_frame_equal(*effects, rtol=1e-9)


def test_the_committed_smooth_pools_follow_from_their_four_runs(tmp_path, monkeypatch):
    """The smooth study's pooled reports (seeds 0-5, 6-11 and all 12) are rebuilt from the
    committed 3-seed runs' trial tables to the committed statistics, and the 12-seed pool
    says what the README says: MATS pre-training better than none at every keep ratio."""
    monkeypatch.chdir(REPO)
    runs = {
        "keep_ratio_factorial_smooth_pooled": ("", "_replica"),
        "keep_ratio_factorial_smooth_pooled_b": ("_third", "_fourth"),
        "keep_ratio_factorial_smooth_pooled12": ("", "_replica", "_third", "_fourth"),
    }
    for pooled, suffixes in runs.items():
        trials = [
            a for s in suffixes for a in ("--trials", f"reports/keep_ratio_factorial_smooth{s}")
        ]
        study = REPO / "studies" / f"{pooled}.yaml"
        result = CliRunner().invoke(
            app, ["report", str(study), "--out", str(tmp_path / "out"), "--no-tokens", *trials]
        )
        assert result.exit_code == 0, result.output
        for table in ("stats.csv", "effects.csv"):
            rebuilt = pd.read_csv(tmp_path / "out" / pooled / table)
            committed = pd.read_csv(REPO / "reports" / pooled / table)
            pd.testing.assert_frame_equal(rebuilt, committed, rtol=1e-9)
    effects = pd.read_csv(REPO / "reports" / "keep_ratio_factorial_smooth_pooled12" / "effects.csv")
    mats = effects[(effects["change"] == "mats vs none") & (effects["metric"] == "val/acc/top1")]
    assert len(mats) == 3 and set(mats["verdict"]) == {"better"} and (mats["pairs"] == 12).all()
