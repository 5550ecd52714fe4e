"""The report's readers: parameter typing, MLflow rows to trials (a trial logged twice, parent
runs), and how MLflow's rows and the Optuna storage's are merged (runs of an earlier study of
the same name left out, trials MLflow missed added, each with a note)."""

from __future__ import annotations

import pandas as pd
import pytest

from mats_lab.report.collect import merge
from mats_lab.report.stores import mlflow_frame, tidy, typed


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.3", 0.3), ("8", 8), ("1.0", 1.0), ("True", True), ("None", None),
        ("mats-0.3", "mats-0.3"), ("nan", "nan"), ("1e-4", 1e-4), (4, 4), (float("nan"), None),
    ],
)  # fmt: skip
def test_typed_parameters(text, value):
    result = typed(text)
    assert result == value and type(result) is type(value)


def row(trial, sweep="s2", state="COMPLETE", **extra):
    return {"study": "kr", "trial": trial, "state": state, "seed": 0, "sweep": sweep} | extra


def test_mlflow_rows_skip_parents_and_keep_the_complete_copy_of_a_trial():
    runs = pd.DataFrame(
        [
            {"run_id": "parent", "status": "FINISHED", "tags.mats_lab.trial": None},
            {"run_id": "a", "status": "RUNNING", "tags.mats_lab.trial": "0", "params.seed": "1",
             "tags.mats_lab.sweep": "s2", "start_time": 1, "metrics.val/acc/top1": 0.1},
            {"run_id": "b", "status": "FINISHED", "tags.mats_lab.trial": "0", "params.seed": "1",
             "tags.mats_lab.sweep": "s2", "tags.mats_lab.synced": "1", "tags.state": "COMPLETE",
             "start_time": 2, "metrics.val/acc/top1": 0.7, "params.keep_ratio": "0.3"},
            {"run_id": "c", "status": "KILLED", "tags.mats_lab.trial": "1", "params.seed": "0",
             "tags.mats_lab.sweep": "s2", "start_time": 3, "tags.log_tail": "x\nOOM\n\n"},
        ]
    )  # fmt: skip
    frame = mlflow_frame("kr", runs)
    assert frame["run_id"].tolist() == ["b", "c"]
    assert frame["state"].tolist() == ["COMPLETE", "PRUNED"]  # no state tag: from the status
    assert frame["seed"].tolist() == [1, 0] and frame.loc[0, "params.keep_ratio"] == 0.3
    assert frame.loc[1, "error"] == "OOM"


def test_merge_leaves_out_runs_of_an_earlier_study_and_adds_what_mlflow_missed():
    from_mlflow = tidy(
        [row(0, run_id="r0", source="mlflow"), row(1, run_id="r1", source="mlflow"),
         row(5, sweep="old", run_id="r5", source="mlflow")]
    )  # fmt: skip
    from_optuna = tidy(
        [row(0, error="", source="optuna"), row(1, state="FAIL", failure="crash",
         error="stage finetune exited with 1", source="optuna"),
         row(2, source="optuna"), row(3, state="RUNNING", source="optuna"),
         row(4, state="FAIL", failure="interrupted", source="optuna")]
    )  # fmt: skip
    notes: list[str] = []
    merged = merge(from_mlflow, from_optuna, notes)
    assert merged["trial"].tolist() == [0, 1, 2, 3, 4]
    assert merged["source"].tolist() == ["mlflow", "mlflow", "optuna", "optuna", "optuna"]
    assert merged.loc[1, "error"] == "stage finetune exited with 1"  # Optuna's words
    assert notes == [
        "1 MLflow runs of an earlier study of this name (--fresh) left out",
        "1 finished trials are not in MLflow (run `mats-lab sync`): taken from the Optuna storage",
    ]
