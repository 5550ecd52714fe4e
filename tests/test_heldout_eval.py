"""The held-out evaluation benchmark (benchmarks/heldout_eval.py) on a constructed finished
study: fine-tuning stage folders at the keys the study plan gives, each with its config and a
checkpoint (a seeded initialisation: nothing is trained), on the tiny generated preset."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from benchmark_module import load_benchmark
from typer.testing import CliRunner

from mats_lab.trial.bench.gpu_check import tiny_data

REPO = Path(__file__).resolve().parents[1]
FINETUNE = REPO / "mm_configs" / "mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"


@pytest.fixture(scope="module")
def heldout():
    return load_benchmark("heldout_eval")


def finished_study(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A one-stage study (keep 0.5 / 1.0, seed 0) whose stage folders hold a config
    and a seeded model each, and its trial table (a failed trial beside the four complete)."""
    from mmaction.registry import MODELS
    from mmengine.runner import save_checkpoint

    from mats_lab.lab.space import grid_points, plan_stages
    from mats_lab.protocol.spec import load_study
    from mats_lab.trial.configs import load_config

    data = tmp_path / "data"
    study = tmp_path / "study.yaml"
    stage = {
        "name": "finetune",
        "config": str(FINETUNE),
        "test": True,
        "overrides": tiny_data(data),
    }
    study.write_text(
        yaml.safe_dump(
            {
                "name": "held",
                "stages": [stage],
                "space": {"keep_ratio": {"grid": [0.5, 1.0]}},
                "seeds": [0],
                "output": str(tmp_path / "runs"),
            }
        )
    )
    spec = load_study(study)
    rows = []
    for n, point in enumerate(grid_points(spec)):
        (plan,) = plan_stages(spec, point, REPO)
        folder = tmp_path / "runs" / "stages" / plan.key
        folder.mkdir(parents=True)
        cfg = load_config(FINETUNE, {**plan.overrides, "model.backbone.keep_ratio": 0.5})
        cfg.dump(str(folder / "config.py"))
        torch.manual_seed(n)
        checkpoint = folder / "epoch_1.pth"
        save_checkpoint(
            {"meta": {}, "state_dict": MODELS.build(cfg.model).state_dict()}, str(checkpoint)
        )
        (folder / "last_checkpoint").write_text(str(checkpoint))
        (folder / "stage.json").write_text(json.dumps({"seed": point.seed}))
        rows.append(
            {
                "study": "held", "trial": n, "state": "COMPLETE", "seed": point.seed,
                "params.keep_ratio": point.params["keep_ratio"],
                "metrics.test/acc/top1": 0.25, "metrics.test/acc/top5": 1.0,
                "metrics.val/acc/top1": 0.5,
            }
        )  # fmt: skip
    rows.append({**rows[0], "trial": len(rows), "state": "FAIL"})
    return study, pd.DataFrame(rows)


def test_every_complete_trial_is_evaluated_on_the_fresh_clips(heldout, mm, tmp_path) -> None:
    study, trials = finished_study(tmp_path)
    stages = heldout.tested_stages(study, REPO, trials)
    assert sorted(stages) == [0, 1], "the complete trials, not the failed one"
    # the first trial's recorded test top-1 is what its checkpoint scores on its own test list
    own = heldout.own_test_list(stages[0], tmp_path / "own.txt")
    data = tmp_path / "data"
    trials.loc[0, "metrics.test/acc/top1"] = heldout.evaluate(stages[0], own, tmp_path / "w0")[
        "top1"
    ]
    table = tmp_path / "trials.csv"
    trials.to_csv(table, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        heldout.app,
        [str(study), "--trials", str(table), "--out", str(out), "--root", str(REPO),
         "--synth-seeds", "1", "--synth-seeds", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 trials, 16 held-out 'tiny' clips (seeds [1, 2])" in result.output
    listed = (out / "heldout_list_videos.txt").read_text().splitlines()
    assert len(listed) == 16 and all(Path(line.rsplit(" ", 1)[0]).is_file() for line in listed)
    assert not any(str(data) in line for line in listed), "no clip of the study's own dataset"
    got = pd.read_csv(out / "trials.csv")
    assert (
        got["metrics.test100/acc/top1"].tolist()[:2] == trials["metrics.test/acc/top1"][:2].tolist()
    )
    again = heldout.evaluate(stages[1], out / "heldout_list_videos.txt", tmp_path / "w2")
    assert got.loc[1, "metrics.test/acc/top1"] == pytest.approx(again["top1"])
    assert got.loc[1, "metrics.test/acc/top5"] == pytest.approx(again["top5"])
    assert (got["metrics.test/acc/top1"] * 16).round(6).mod(1).eq(0).all(), "counts of 16 clips"
    assert got.loc[2, "metrics.test/acc/top1"] == 0.25 and got.loc[2, "state"] == "FAIL"


def test_a_check_that_does_not_reproduce_or_a_missing_stage_stops_it(heldout, mm, tmp_path) -> None:
    study, trials = finished_study(tmp_path)
    trials.loc[0, "metrics.test/acc/top1"] = 2.0  # no checkpoint scores that
    table = tmp_path / "trials.csv"
    trials.to_csv(table, index=False)
    args = [str(study), "--trials", str(table), "--out", str(tmp_path / "o"), "--synth-seeds", "1"]
    result = CliRunner().invoke(heldout.app, args)
    assert result.exit_code == 1 and "did not reproduce" in result.output
    own = CliRunner().invoke(heldout.app, [*args, "--synth-seeds", "0"])  # the study's own clips
    assert own.exit_code == 2 and "synth seed 0 is the study's own dataset" in own.output
    stage = heldout.tested_stages(study, REPO, trials)[1]
    (stage / "last_checkpoint").unlink()
    result = CliRunner().invoke(heldout.app, args)
    assert result.exit_code == 2
    assert "trial 1 (1.0, 0): no finished stage at" in result.output
