"""``mats-lab sync``: push the finished trials of a study's Optuna storage to MLflow.

Used after a sweep ran with MLflow unreachable: every finished trial without a recorded run is
logged as a child run of its own sweep's parent run (created if that never reached MLflow).
Idempotent: a trial already logged (found by its tags) is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from mats_lab.lab import study as st
from mats_lab.lab.records import trial_record
from mats_lab.lab.tracking import (
    STUDY_TAG,
    SWEEP_TAG,
    ensure_experiment,
    find_parent,
    is_synced,
    sync_trial,
)
from mats_lab.protocol.layout import default_storage, default_tracking
from mats_lab.protocol.provenance import git_commit
from mats_lab.protocol.spec import StudySpec, study_paths

__all__ = ["sync_study"]


def _parent(client: Any, experiment_id: str, study: str, sweep: str) -> str:
    found = find_parent(client, experiment_id, study, sweep)  # not a child run of that sweep
    if found is not None:
        return str(found.info.run_id)
    run = client.create_run(
        experiment_id, run_name=f"sweep-{sweep}", tags={STUDY_TAG: study, SWEEP_TAG: sweep}
    )
    client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id


def sync_study(
    spec: StudySpec, study_file: Path, storage: str | None, tracking_uri: str | None
) -> tuple[int, int]:
    """Returns ``(pushed, finished trials)``."""
    from mlflow.tracking import MlflowClient

    folder, root = study_paths(spec, study_file)
    storage_url = storage or spec.storage or default_storage(folder)
    uri = tracking_uri or spec.tracking_uri or default_tracking(folder)
    study = st.open_study(spec, st.open_storage(storage_url))
    client = MlflowClient(tracking_uri=uri)
    experiment_id = ensure_experiment(client, uri, spec.name)
    commit = git_commit(root)
    finished = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    ]
    pushed = 0
    for trial in finished:
        sweep = str(trial.user_attrs.get("sweep", ""))
        if is_synced(client, experiment_id, spec.name, trial.number, sweep):
            continue
        parent = _parent(client, experiment_id, spec.name, sweep)
        sync_trial(client, experiment_id, spec.name, trial_record(trial, commit), parent)
        pushed += 1
    return pushed, len(finished)
