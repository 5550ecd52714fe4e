"""A study that cannot run is refused before anything trains: knob values out of range,
misspelt config paths and override keys, by ``--dry-run`` and by ``sweep`` alike, naming the
study file, the key and the grid point; and every shipped study passes the same check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mats_lab.cli.main import app
from mats_lab.lab.preflight import PreflightError, check_study, sample_points
from mats_lab.protocol.spec import load_study, study_paths

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"


def _variant(tmp_path: Path, edit) -> Path:  # noqa: ANN001
    """A copy of studies/keep_ratio.yaml, edited, inside a throwaway repository layout (its
    configs resolve against the real mm_configs/ through a symlink)."""
    repo = tmp_path / "repo"
    (repo / "studies").mkdir(parents=True)
    (repo / "mm_configs").symlink_to(ROOT / "mm_configs")
    data = yaml.safe_load((STUDIES / "keep_ratio.yaml").read_text())
    edit(data)
    path = repo / "studies" / "variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _keep_ratio_too_big(data: dict) -> None:
    data["space"]["method"]["grid"][2]["keep_ratio"] = 1.5


def _misspelt_finetune_config(data: dict) -> None:
    data["stages"][1]["config"] = data["stages"][1]["config"].replace("synth", "synht")


def _misspelt_override(data: dict) -> None:
    data["stages"][1]["overrides"] = {"train_cfg.val_intervl": 5}


def _invoke(*args: str):  # noqa: ANN202
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("command", [["--dry-run"], ["--max-trials", "1"]])
def test_a_keep_ratio_out_of_range_is_refused_naming_key_point_and_range(tmp_path, command):
    path = _variant(tmp_path, _keep_ratio_too_big)
    result = _invoke("sweep", str(path), *command)
    assert result.exit_code == 2
    assert f"{path}: space.method.grid.2.keep_ratio" in result.output
    assert "(0, 1]" in result.output and "1.5" in result.output
    assert not (path.parent / "runs").exists(), "nothing may start"


@pytest.mark.parametrize("command", [["--dry-run"], ["--max-trials", "1"]])
def test_a_misspelt_config_path_is_refused_before_any_stage_starts(tmp_path, command):
    path = _variant(tmp_path, _misspelt_finetune_config)
    result = _invoke("sweep", str(path), *command)
    assert result.exit_code == 2
    assert "stages.1 (finetune), point 0 (method=videomae, seed=0)" in result.output
    assert "motion-synht.py does not exist" in result.output
    assert "did you mean videomae_vit-tiny-p8_finetune_8x4x1_motion-synth.py" in result.output
    assert "nothing was started" in result.output
    assert not (path.parent / "runs").exists(), "nothing may start"


def test_a_misspelt_override_of_a_registered_component_is_refused(tmp_path):
    path = _variant(tmp_path, _misspelt_override)
    spec = load_study(path)
    _, root = study_paths(spec, path)
    with pytest.raises(
        PreflightError, match=r"EpochBasedTrainLoop takes no argument 'val_intervl'"
    ):
        check_study(spec, path, root)


def test_a_sampled_study_is_checked_at_both_ends_of_its_ranges(tmp_path):
    def sampled(data: dict) -> None:
        data["space"] = {
            "recipe": {"choices": ["mats", "videomae"], "stages": ["finetune"]},
            "keep_ratio": {"float": [0.2, 1.0], "stages": ["finetune"]},
        }
        for stage in data["stages"]:
            stage["config"] = stage["config"].replace("{recipe}", "mats")
        data["stages"][1]["config"] = (
            "mm_configs/{recipe}_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
        )
        data["sampler"] = {"type": "tpe"}
        data["budget"] = {"trials": 4}

    path = _variant(tmp_path, sampled)
    spec = load_study(path)
    points = sample_points(spec)
    assert sorted((p.values["recipe"], p.values["keep_ratio"]) for p in points) == [
        ("mats", 0.2),
        ("mats", 1.0),
        ("videomae", 0.2),
        ("videomae", 1.0),
    ]
    _, root = study_paths(spec, path)
    assert check_study(spec, path, root, resolve=False) == 5


SHIPPED = sorted(p for p in STUDIES.rglob("*.yaml") if "runs" not in p.parts)


def _first_of_its_kind(paths: list[Path]) -> list[bool]:
    """For each study file, whether no earlier file plans the same stages: files that differ
    only in name, description and seeds (the factorial study's reruns and pools) resolve the
    same configs, so one resolving subprocess checks them all."""
    seen: set[str] = set()
    first = []
    for path in paths:
        shape = load_study(path).model_dump(mode="json", exclude={"name", "description", "seeds"})
        key = json.dumps(shape, sort_keys=True)
        first.append(key not in seen)
        seen.add(key)
    return first


def test_the_shipped_studies_include_the_gpu_node_ones():
    assert any(p.parent != STUDIES for p in SHIPPED) and len(SHIPPED) >= 5
    firsts = _first_of_its_kind(SHIPPED)
    reruns = [p.name for p, first in zip(SHIPPED, firsts, strict=True) if not first]
    assert "keep_ratio_factorial_replica.yaml" in reruns and "keep_ratio.yaml" not in reruns


@pytest.mark.parametrize(
    ("path", "resolve"),
    list(zip(SHIPPED, _first_of_its_kind(SHIPPED), strict=True)),
    ids=lambda v: (
        str(v.relative_to(STUDIES)) if isinstance(v, Path) else ("resolved" if v else "rerun")
    ),
)
def test_every_shipped_study_passes_preflight(path, resolve):
    """One study a test (a resolving subprocess each), so the workers share them out; a rerun
    of an earlier file with other seeds has its paths and grid checked without resolving."""
    spec = load_study(path)
    _, root = study_paths(spec, path)
    assert check_study(spec, path, root, resolve=resolve) >= 1, path


def test_the_layout_keeps_working_from_a_copy_outside_the_repository(tmp_path):
    # A study file copied elsewhere still finds mm_configs/ through the current directory.
    copied = tmp_path / "keep_ratio.yaml"
    shutil.copy(STUDIES / "keep_ratio.yaml", copied)
    spec = load_study(copied)
    folder, _ = study_paths(spec, copied)
    assert folder == (tmp_path / "runs" / "keep_ratio").resolve()


def test_dry_run_shows_each_stage_devices_and_refuses_a_pool_too_small():
    study = STUDIES / "gpu" / "keep_ratio_k400.yaml"
    ok = _invoke("sweep", str(study), "--dry-run", "--devices", ",".join(map(str, range(8))))
    assert ok.exit_code == 0, ok.output
    assert "device pool: 8 devices" in ok.output and "on 8 devices" in ok.output
    small = _invoke("sweep", str(study), "--dry-run", "--devices", "2")
    assert small.exit_code == 2
    assert "stage 'pretrain' needs 8 devices, the device pool has 2" in small.output
