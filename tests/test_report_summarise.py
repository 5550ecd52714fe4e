"""The report's summary, on hand-made trials: mean and std over seeds, the baseline and its
deltas, the best marks, the Pareto front, and trials that are not complete."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from mats_lab.report.collect import optuna_frame
from mats_lab.report.summarise import compare, pareto_front, summarise

METHODS = {"videomae": 1.0, "mats-0.6": 0.6, "mats-0.3": 0.3}


def trial(number, method, seed, top1=None, state=TrialState.COMPLETE, gmacs=None, **attrs):
    """A FrozenTrial as the sweep leaves it (bundle ``method`` expanded into recipe/keep)."""
    keep = METHODS[method]
    variables = {"recipe": "videomae" if keep == 1.0 else "mats", "keep_ratio": keep}
    metrics = {}
    if top1 is not None:
        metrics = {
            "test/acc/top1": top1,
            "val/acc/top1": top1 - 0.01,
            "pretrain/train_gmacs": 2.0 if keep == 1.0 else 1.0,
            "test_gmacs": gmacs if gmacs is not None else 10.0 * keep,
            "peak_memory_mb": 100.0 * keep,
            "throughput": 50.0 / keep,
            "wall_time_s": 60.0,
        }
    user = {"seed": seed, "point_key": f"{method}-{seed}", "variables": variables}
    user |= {"metrics": metrics, "sweep": "s1"} | attrs
    frozen = create_trial(
        state=state,
        params={"method": method},
        distributions={"method": CategoricalDistribution(list(METHODS))},
        value=top1 if state == TrialState.COMPLETE else None,
        user_attrs=user,
    )
    frozen.number = number
    return frozen


def frame(trials) -> pd.DataFrame:
    return optuna_frame("kr", trials)


def study(trials, **kwargs):
    return summarise(
        frame(trials), ["method"], bundles=["method"], stage_names=["pretrain", "finetune"],
        study="kr", **kwargs,
    )  # fmt: skip


STANDARD = [
    trial(0, "videomae", 0, 0.60),
    trial(1, "videomae", 1, 0.64),
    trial(2, "mats-0.6", 0, 0.70),
    trial(3, "mats-0.6", 1, 0.66),
    trial(4, "mats-0.6", 2, 0.71),
    trial(5, "mats-0.3", 0, 0.55),
]


def test_mean_std_and_seed_count_per_configuration():
    s = study(STANDARD)
    t = s.table
    assert list(t.index) == ["videomae", "mats-0.6", "mats-0.3"]  # order of first trial
    assert t.loc["mats-0.6", "top1.mean"] == pytest.approx(np.mean([0.70, 0.66, 0.71]))
    assert t.loc["mats-0.6", "top1.std"] == pytest.approx(np.std([0.70, 0.66, 0.71], ddof=1))
    assert t.loc["mats-0.6", "n"] == 3 and t.loc["videomae", "n"] == 2
    assert math.isnan(t.loc["mats-0.3", "top1.std"])  # one seed: no spread
    assert [c.key for c in s.columns] == [
        "top1", "val_top1", "pretrain_gmacs", "finetune_gmacs", "memory", "throughput", "wall",
    ]  # fmt: skip
    assert s.columns[0].metric == "metrics.test/acc/top1"  # tested trials: test accuracy first
    assert s.config_columns == ["method", "recipe", "keep_ratio"]


def test_baseline_by_convention_and_deltas_in_points_and_ratios():
    s = study(STANDARD)
    assert s.baseline == "videomae" and "videomae" in s.baseline_reason
    t = s.table
    base = np.mean([0.60, 0.64])
    assert t.loc["mats-0.6", "top1.delta"] == pytest.approx(
        (np.mean([0.70, 0.66, 0.71]) - base) * 100
    )
    assert t.loc["mats-0.3", "finetune_gmacs.delta"] == pytest.approx(3.0 / 10.0)
    assert t.loc["videomae", "top1.delta"] == 0 and t.loc["videomae", "memory.delta"] == 1
    assert t["baseline"].tolist() == [True, False, False]


def test_baseline_chosen_explicitly_or_by_keep_ratio():
    assert study(STANDARD, baseline="mats-0.3").baseline == "mats-0.3"
    assert study(STANDARD, baseline="keep_ratio=0.6").baseline == "mats-0.6"
    with pytest.raises(ValueError, match="matches no configuration: videomae; mats-0.6; mats-0.3"):
        study(STANDARD, baseline="mats-0.9")
    # no VideoMAE label: the configuration keeping every token
    renamed = frame(STANDARD)
    renamed["params.method"] = renamed["params.method"].replace({"videomae": "full"})
    renamed["params.recipe"] = renamed["params.recipe"].replace({"videomae": "tube"})
    s = summarise(renamed, ["method"], stage_names=["pretrain", "finetune"])
    assert s.baseline == "full" and "keep_ratio 1.0" in s.baseline_reason


def test_first_configuration_is_the_baseline_when_nothing_matches():
    t = frame(STANDARD[2:])
    t["params.keep_ratio"] = t["params.keep_ratio"].replace({1.0: 0.9})
    s = summarise(t, ["method"], stage_names=["finetune"])
    assert s.baseline == "mats-0.6" and "first configuration" in s.baseline_reason


def test_best_only_where_the_paired_test_supports_it():
    s = study(STANDARD)
    # mats-0.6 has the highest mean, but two paired seeds (+10, +2 points) are no evidence
    assert s.table.loc["mats-0.6", "top1.verdict"] == "no evidence"
    assert "top1" not in s.best
    # mats-0.3 is cheapest but has one seed: no test; mats-0.6 costs 6 instead of 10 GMACs in
    # every pair, an exact difference
    assert s.best["finetune_gmacs"] == ["mats-0.6"]
    assert s.best["throughput"] == ["mats-0.6"]  # throughput: higher is better
    assert "wall" not in s.best  # the same in every row: nothing is better


def test_failed_pruned_and_unfinished_trials_are_counted_listed_never_averaged():
    trials = STANDARD + [
        trial(
            6,
            "mats-0.3",
            1,
            None,
            TrialState.FAIL,
            failure="crash",
            error="stage finetune exited with 1",
        ),
        trial(7, "mats-0.3", 1, 0.58),  # the retry of trial 6
        trial(8, "mats-0.6", 3, None, TrialState.PRUNED),
        trial(9, "videomae", 2, None, TrialState.RUNNING),
    ]
    # a pruned trial carries the metrics it reached: they must not enter the mean
    trials[8].user_attrs["metrics"] = {"test/acc/top1": 0.01, "test_gmacs": 6.0}
    s = study(trials)
    assert s.counts == {"COMPLETE": 7, "PRUNED": 1, "FAIL": 1, "RUNNING": 1}
    assert s.table.loc["mats-0.6", "n"] == 3
    assert s.table.loc["mats-0.6", "top1.mean"] == pytest.approx(np.mean([0.70, 0.66, 0.71]))
    assert s.table.loc["mats-0.3", "top1.mean"] == pytest.approx(np.mean([0.55, 0.58]))
    assert s.table["excluded"].tolist() == [1, 1, 1]
    listed = s.excluded.set_index("trial")
    assert listed["state"].to_dict() == {6: "FAIL", 8: "PRUNED", 9: "RUNNING"}
    assert listed.loc[6, "failure"] == "crash" and "exited with 1" in listed.loc[6, "error"]
    assert listed.loc[6, "completed_later"] == "trial 7"
    assert listed.loc[8, "completed_later"] == ""


def test_a_study_with_no_complete_trial_has_an_empty_table():
    s = study([trial(0, "videomae", 0, None, TrialState.FAIL, failure="config")])
    assert s.table.empty and s.baseline is None and len(s.excluded) == 1


@pytest.mark.parametrize(
    ("x", "y", "front"),
    [
        ([1, 2, 3], [1, 2, 3], [True, True, True]),  # each costs more and gains more
        ([1, 2, 3], [3, 2, 1], [True, False, False]),  # the cheapest is also the best
        ([1, 1, 2], [1, 2, 3], [False, True, True]),  # same cost, lower accuracy: dominated
        ([1, 2, 2], [1, 3, 3], [True, True, True]),  # equal points are both on the front
        ([1, np.nan, 3], [1, 5, 2], [True, False, True]),  # unmeasured: never on the front
        ([5, 1, 3, 2], [9, 1, 8, 8], [True, True, False, True]),
    ],
)
def test_pareto_front(x, y, front):
    assert pareto_front(np.array(x, float), np.array(y, float)).tolist() == front


def test_pareto_front_of_the_study_is_accuracy_against_finetuning_gmacs():
    s = study(STANDARD)
    assert s.pareto_x == "finetune_gmacs" and s.primary == "top1"
    # mats-0.3 is cheapest, mats-0.6 beats videomae at lower cost
    assert s.table["pareto"].to_dict() == {"videomae": False, "mats-0.6": True, "mats-0.3": True}


def test_compare_keeps_each_studys_baseline_and_marks_across_studies():
    a = study(STANDARD)
    b = study([trial(0, "videomae", 0, 0.50), trial(1, "mats-0.3", 0, 0.80)])
    b.study = "other"
    both = compare([a, b])
    assert both.config_columns[0] == "study"
    assert list(both.table["study"]) == ["kr"] * 3 + ["other"] * 2
    assert both.table.loc["other: mats-0.3", "top1.delta"] == pytest.approx(30.0)
    assert both.table.loc["other: mats-0.3", "top1.verdict"] == "n<2"  # one seed each
    assert "top1" not in both.best  # no row is supported better than its baseline
    assert both.table["baseline"].sum() == 2
    assert both.alpha == a.alpha == 0.05


def test_the_baseline_may_name_a_variable_the_study_holds_at_one_value():
    """A study file's ``baseline: pretrain=none,keep_ratio=0.3`` where keep_ratio has one
    value: the table's columns leave it out (it does not vary); the baseline matches by it."""
    rows = []
    for n, (pretrain, seed, top1) in enumerate(
        [("mats", 0, 0.8), ("mats", 1, 0.82), ("none", 0, 0.78), ("none", 1, 0.79)]
    ):
        rows.append(
            {
                "study": "c", "trial": n, "state": "COMPLETE", "seed": seed,
                "point_key": f"{pretrain}-{seed}", "params.pretrain": pretrain,
                "params.keep_ratio": 0.3, "metrics.test/acc/top1": top1,
            }
        )  # fmt: skip
    trials = pd.DataFrame(rows)
    s = summarise(trials, ["pretrain", "keep_ratio"], baseline="pretrain=none,keep_ratio=0.3")
    assert s.config_columns == ["pretrain"] and s.fixed == {"keep_ratio": 0.3}
    assert s.baseline == "pretrain=none, keep_ratio=0.3"
    labels = "pretrain=mats, keep_ratio=0.3; pretrain=none, keep_ratio=0.3"
    with pytest.raises(ValueError, match=f"matches no configuration: {labels}"):
        summarise(trials, ["pretrain", "keep_ratio"], baseline="pretrain=none,keep_ratio=0.6")
