"""``mats-lab demo`` is ``make demo``'s job: run the study, report it beside (never over) the
reference, compare with it. Here on the fake trial command (no model)."""

from __future__ import annotations

import sys

import yaml
from typer.testing import CliRunner

from mats_lab.cli.main import app

FAKE = [sys.executable, "-m", "mats_lab.lab.fake_stage"]
FT = "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"


def test_demo_runs_the_study_and_reports_it_against_a_reference(tmp_path):
    study = tmp_path / "demo_study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "demo_study",
                "stages": [{"name": "finetune", "config": FT, "overrides": {"fake.duration": 0.2}}],
                "space": {"keep_ratio": {"grid": [0.3, 1.0]}},
                "resources": {"devices": 2},
                "command": FAKE,
                "output": str(tmp_path / "runs"),
            }
        )
    )
    reference = tmp_path / "reference"
    args = ["demo", "--study", str(study), "--out", str(reference), "--reference", str(tmp_path)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert (reference / "demo_study" / "index.md").is_file()
    assert "no reference for study demo_study" in first.output
    local = tmp_path / "local"
    args = ["demo", "--study", str(study), "--out", str(local), "--reference", str(reference)]
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    compared = (local / "demo_study" / "reference.md").read_text()
    assert "keep_ratio=0.3" in compared or "0.3" in compared
    assert "+0.0" in compared and (reference / "demo_study" / "results.csv").is_file()
    assert f"open {local / 'demo_study' / 'index.html'}" in second.output
