"""Two `mats-lab worker` processes share one study on a real PostgreSQL server (tests/pg_server.py)
and together complete a grid of fake trials: no point duplicated, none lost, both workers busy,
and one MLflow child run per completed trial.

The workers stand for two machines: each has its own copy of the study file, so its own study
folder (trial work dirs, the folder lock), as two checkouts would. They share the Optuna storage
and the MLflow tracking URI. The tracking store is a SQLite file created (with the study's
experiment) once before the workers start: several processes creating a fresh MLflow database at
the same moment fail (STACK.md item 4), and two workers creating the experiment at the same
moment race on its name. Machines that do not share a disk use an MLflow server instead, and a
shared stage store: tests/test_cluster.py runs that set-up (a real `mlflow server`, a killed
worker, a tracking server restart).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

FT = (
    Path(__file__).resolve().parents[1]
    / "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
)
NAME = "two-workers"
DURATIONS = [1.0, 1.2, 1.4, 1.6, 1.8, 2.0]  # x 2 seeds: 12 grid points, ~9 s per worker


def study_text() -> str:
    return yaml.safe_dump(
        {
            "name": NAME,
            "stages": [{"name": "finetune", "config": str(FT)}],
            "space": {"fake.duration": {"grid": DURATIONS}},
            "seeds": [0, 1],
            "command": [sys.executable, "-m", "mats_lab.lab.fake_stage"],
        }
    )


def test_workers_queueing_at_once_queue_each_point_once(tmp_path, postgres_url):
    """Three workers (own engines, as on other machines) queue the grid at the same moment:
    the advisory lock in enqueue_missing lets one queue it and the others find it queued."""
    from mats_lab.lab.space import grid_points
    from mats_lab.lab.study import enqueue_missing, open_storage, open_study
    from mats_lab.protocol.spec import load_study

    path = tmp_path / "study.yaml"
    path.write_text(study_text().replace(NAME, "queue-race"))
    spec = load_study(path)
    points = grid_points(spec)
    barrier = threading.Barrier(3)
    added: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            study = open_study(spec, open_storage(postgres_url))
            barrier.wait(timeout=60)
            added.append(enqueue_missing(study, spec, points))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert sorted(added) == [0, 0, 12]
    waiting = optuna.load_study(study_name="queue-race", storage=postgres_url).get_trials(
        states=(TrialState.WAITING,)
    )
    assert sorted(Counter(t.user_attrs["point_key"] for t in waiting).values()) == [1] * 12


def test_two_workers_complete_a_grid_once(tmp_path, postgres_url):
    from mlflow.tracking import MlflowClient

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # the database, once; artifacts in the test's folder (MLflow's default is ./mlruns)
    artifacts = (tmp_path / "mlartifacts").as_uri()
    MlflowClient(tracking_uri=tracking).create_experiment(NAME, artifact_location=artifacts)

    procs, logs = [], []
    for machine in ("a", "b"):
        folder = tmp_path / machine
        folder.mkdir()
        study = folder / "study.yaml"
        study.write_text(study_text())
        log = open(folder / "worker.log", "w")  # noqa: SIM115 - closed below
        logs.append(log)
        command = [sys.executable, "-m", "mats_lab.cli.main", "worker", str(study)]
        command += ["--storage", postgres_url, "--tracking-uri", tracking, "--devices", "2"]
        procs.append(
            subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        )
    deadline = time.time() + 240
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.time()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
    outputs = [(tmp_path / m / "worker.log").read_text() for m in ("a", "b")]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out

    study = optuna.load_study(study_name=NAME, storage=postgres_url)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    keys = Counter(t.user_attrs["point_key"] for t in complete)
    assert len(keys) == 12, f"lost points: {12 - len(keys)}\n" + "\n".join(outputs)
    assert set(keys.values()) == {1}, f"duplicated points: {keys}\n" + "\n".join(outputs)
    assert not [t for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    sweeps = Counter(t.user_attrs["sweep"] for t in complete)
    assert len(sweeps) == 2, f"one worker did every trial: {sweeps}"

    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    children = [r for r in runs if "mats_lab.trial" in r.data.tags]
    parents = [r for r in runs if "mats_lab.trial" not in r.data.tags]
    assert len(parents) == 2  # one per worker
    numbers = Counter(int(r.data.tags["mats_lab.trial"]) for r in children)
    assert set(numbers.values()) == {1}
    assert set(numbers) == {t.number for t in complete}
    assert {r.info.status for r in children} == {"FINISHED"}
    by_sweep = {r.data.tags.get("mats_lab.sweep") for r in parents}
    assert {r.data.tags["mlflow.parentRunId"] for r in children} <= {r.info.run_id for r in parents}
    assert by_sweep == set(sweeps)
