"""The machine line a stage records, and the report's note on trials from several machines."""

from __future__ import annotations

import torch

from mats_lab.protocol.records import StageResult
from mats_lab.report.index import machine_notes
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
