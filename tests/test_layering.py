"""The layer rules of DESIGN.md, checked in fresh interpreters: the core math imports no
MMAction2/Optuna/MLflow, and the CLI starts without torch."""

import json
import subprocess
import sys

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
