"""The machine line a stage records, and the report's note on trials from several machines."""

from __future__ import annotations

import pandas as pd
import torch

from mats_lab.protocol.records import StageResult, trial_machine
from mats_lab.report.index import machine_notes
from mats_lab.report.reference import machine_line
from mats_lab.trial.machine import cpu_model, machine_label


def test_the_machine_line_names_cpu_kernels_and_torch():
    label = machine_label()
    parts = label.split(" | ")
    assert parts[0] == cpu_model() and parts[0]
    assert parts[1] == torch.backends.cpu.get_cpu_capability()
    assert parts[2] == f"torch {torch.__version__}"
    assert len(parts) == (4 if torch.cuda.is_available() else 3)


def test_a_stage_result_keeps_its_machine():
    result = StageResult(machine="cpu x | AVX2 | torch 2")
    assert (
        StageResult.model_validate_json(result.model_dump_json()).machine
        == "cpu x | AVX2 | torch 2"
    )
    assert StageResult().machine is None  # results written before it was recorded still read


def test_one_machine_or_none_recorded_gives_no_note():
    assert machine_notes([]) == []
    assert machine_notes(["a", "a", ""]) == []


def test_trials_from_two_machines_are_noted_by_name():
    (note,) = machine_notes(["b", "a; b", "", "a"])
    assert "2 machines (a / b)" in note and "compare verdicts, not single trials" in note


def trials(*machines: str, state: str = "COMPLETE") -> pd.DataFrame:
    return pd.DataFrame({"state": [state] * len(machines), "machine": list(machines)})


def test_a_reference_from_another_machine_is_named_beside_the_comparison():
    line = machine_line(trials("x", "x"), trials("y"))
    assert line.startswith("The reference ran on y; this run on x.")
    assert "compare the verdicts" in line
    # a reference written before machines were recorded (no column, or empty cells)
    old = pd.DataFrame({"state": ["COMPLETE"]})
    assert "a machine it did not record" in machine_line(trials("x"), old)
    assert "a machine it did not record" in machine_line(trials("x"), trials(""))


def test_no_line_when_both_ran_on_the_same_machine_or_this_run_recorded_none():
    assert machine_line(trials("x"), trials("x", "x")) == ""
    assert machine_line(trials(""), trials("y")) == ""
    assert machine_line(None, trials("y")) == ""
    # failed trials do not count: only complete ones produced the figures
    assert machine_line(trials("x"), pd.concat([trials("x"), trials("z", state="FAIL")])) == ""


def test_a_trials_machine_joins_its_stages_machines():
    assert trial_machine([{"machine": "b"}, {"machine": "a"}, {"machine": "b"}]) == "a; b"
    assert trial_machine([{"machine": None}, {}]) == ""
