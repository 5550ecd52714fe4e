"""The Slurm batch script (deploy/slurm/mats-lab-worker.sbatch) parses, asks Slurm for one task
per node, and each task's command line is one the CLI's own `mats-lab worker` accepts, with that
node's GPUs as its devices.

The script runs under bash with a stand-in `srun` (it drops srun's options and runs the task in a
node's environment: CUDA_VISIBLE_DEVICES set as Slurm sets it) and a stand-in `mats-lab` (it
writes its arguments to a file); the recorded arguments are then parsed by the real Typer/Click
command, so a renamed or removed option fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "slurm" / "mats-lab-worker.sbatch"
ENV = {
    "STUDY": "studies/gpu/keep_ratio_k400.yaml",
    "MATS_LAB_STORAGE": "postgresql://mats@db-host/optuna",
    "MATS_LAB_TRACKING": "http://mlflow-host:5000",
    "MATS_LAB_STAGE_STORE": "/shared/mats-lab/stages",
}


def _bash() -> str:
    bash = shutil.which("bash")
    assert bash is not None, "bash is needed to check the Slurm script"
    return bash


def _stand_ins(tmp_path: Path, gpus: str) -> tuple[Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{tmp_path}/srun.args"\n'
        'while [ "${1#--}" != "$1" ]; do shift; done\n'
        f'CUDA_VISIBLE_DEVICES={gpus} exec "$@"\n'
    )
    record = tmp_path / "worker.json"
    fake = bin_dir / "fake-mats-lab"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    for path in (srun, fake):
        path.chmod(0o755)
    return bin_dir, record


def run_script(tmp_path: Path, env: dict[str, str], gpus: str = "4,5,6,7"):
    bin_dir, record = _stand_ins(tmp_path, gpus)
    full = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MATS_LAB": str(bin_dir / "fake-mats-lab"),
        **env,
    }
    result = subprocess.run(  # noqa: S603 - an argument list
        [_bash(), str(SCRIPT)], env=full, capture_output=True, text=True, check=False
    )
    return result, record


def test_the_script_parses():
    result = subprocess.run(  # noqa: S603
        [_bash(), "-n", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_it_asks_for_one_worker_per_node_with_gpus():
    directives = dict(
        re.findall(r"^#SBATCH --([a-z-]+)(?:=(\S+))?", SCRIPT.read_text(), flags=re.MULTILINE)
    )
    assert directives["ntasks-per-node"] == "1"
    assert int(directives["gpus-per-node"]) >= 1
    assert "nodes" in directives


def test_each_task_runs_the_cli_worker_on_its_gpus(tmp_path):
    import typer

    from mats_lab.cli.main import app

    result, record = run_script(tmp_path, ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--ntasks-per-node=1" in (tmp_path / "srun.args").read_text()
    argv = json.loads(record.read_text())
    assert argv[0] == "worker"
    command = typer.main.get_command(app)
    worker = command.commands["worker"]  # type: ignore[attr-defined]
    params = worker.make_context("worker", argv[1:]).params  # the CLI's own parser
    assert params["study"] == Path(ENV["STUDY"])
    assert params["storage"] == ENV["MATS_LAB_STORAGE"]
    assert params["tracking_uri"] == ENV["MATS_LAB_TRACKING"]
    assert params["stage_store"] == ENV["MATS_LAB_STAGE_STORE"]
    assert params["devices"] == "4,5,6,7"
    from mats_lab.protocol.spec import check_devices

    assert check_devices(params["devices"]) == [4, 5, 6, 7]


@pytest.mark.parametrize("missing", sorted(ENV))
def test_a_missing_setting_is_named(tmp_path, missing):
    env = {k: v for k, v in ENV.items() if k != missing}
    result, record = run_script(tmp_path, env)
    assert result.returncode != 0
    assert missing in result.stderr
    assert not record.exists()
