"""The layer rules of DESIGN.md, checked in fresh interpreters: the core math imports no
MMAction2/Optuna/MLflow, and the CLI starts without torch."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY_FOR_CORE = ("mmengine", "mmcv", "mmaction", "optuna", "mlflow")
HEAVY_FOR_CLI = ("torch", "mmengine", "mmcv", "mmaction", "optuna", "mlflow")


def loaded_after(statement: str, roots: tuple[str, ...]) -> list[str]:
    """Top-level packages among ``roots`` that are loaded after ``statement``."""
    code = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(roots)!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip())


def test_core_imports_only_torch_and_numpy():
    modules = "motion, selection, masks, frames, patchify"
    assert loaded_after(f"from mats_lab.core import {modules}", HEAVY_FOR_CORE) == []


def test_models_import_no_mm_library():
    assert (
        loaded_after(
            "import mats_lab.models.vit, mats_lab.models.mae, mats_lab.models.convert",
            HEAVY_FOR_CORE,
        )
        == []
    )


def test_cli_starts_without_torch():
    assert loaded_after("import mats_lab.cli.main", HEAVY_FOR_CLI) == []


def test_lab_imports_no_torch_or_mm():
    statement = (
        "import mats_lab.lab.sweep, mats_lab.lab.sync, mats_lab.lab.fake_stage, "
        "mats_lab.lab.tracking, mats_lab.lab.records"
    )
    assert loaded_after(statement, ("torch", "mmengine", "mmcv", "mmaction")) == []


# -- import-linter: the layer rules of .importlinter, imports inside functions included --------

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path, config: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def test_import_contracts_hold():
    out = _lint_imports(ROOT, ROOT / ".importlinter")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "wrong_way", "contract"),
    [
        ("lab/progress.py", "import torch", "lab and report never import torch"),
        ("report/summarise.py", "from mats_lab.lab import sweep", "cli over lab | report"),
        ("protocol/names.py", "import mats_lab.lab.study", "protocol (the trial contract)"),
    ],
)
def test_a_wrong_way_import_inside_a_function_breaks_a_contract(
    tmp_path, module, wrong_way, contract
):
    shutil.copytree(ROOT / "mats_lab", tmp_path / "mats_lab")
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    target = tmp_path / "mats_lab" / module
    target.write_text(target.read_text() + f"\n\ndef _wrong_way():\n    {wrong_way}\n")
    out = _lint_imports(tmp_path, tmp_path / ".importlinter")
    assert out.returncode != 0
    broken = out.stdout.split("Broken contracts")[-1]
    assert contract in broken.replace("\n", " "), out.stdout
