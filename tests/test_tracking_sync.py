"""Writing a finished trial to MLflow survives a server that goes away between the calls: a run
marked synced but never ended is ended on the retry (the sweep's) or by ``mats-lab sync``,
never left RUNNING (found by the tracking-server restart test in ``test_cluster``)."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from mats_lab.lab.tracking import ensure_experiment, is_synced, sync_trial

RECORD = {
    "number": 3,
    "name": "trial-3",
    "state": "COMPLETE",
    "sweep": "s1",
    "params": {"keep_ratio": 0.3},
    "metrics": {"val/acc/top1": 0.7},
    "history": {"val/acc/top1": [[1, 0.5], [2, 0.7]]},
    "tags": {},
    "end_time": 1_700_000_000.0,
}


class Outage(Exception):
    pass


class DropsTheEnd:
    """An MlflowClient whose first ``set_terminated`` fails, as when the server goes away
    right after the synced tag was written."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
        self.failed = False

    def __getattr__(self, name):
        return getattr(self.client, name)

    def set_terminated(self, run_id, status=None):
        if not self.failed:
            self.failed = True
            raise Outage("connection refused")
        return self.client.set_terminated(run_id, status=status)


@pytest.fixture
def client(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, MlflowClient(tracking_uri=uri)


def test_a_run_whose_end_was_lost_is_ended_on_the_retry(client):
    uri, real = client
    experiment = ensure_experiment(real, uri, "study")
    flaky = DropsTheEnd(real)
    with pytest.raises(Outage):
        sync_trial(flaky, experiment, "study", RECORD, None)
    (run,) = real.search_runs([experiment])
    assert run.info.status == "RUNNING"
    assert not is_synced(real, experiment, "study", 3, "s1")  # so `mats-lab sync` takes it
    run_id = sync_trial(flaky, experiment, "study", RECORD, None)  # the retry
    assert run_id == run.info.run_id and len(real.search_runs([experiment])) == 1
    assert real.get_run(run_id).info.status == "FINISHED"
    assert is_synced(real, experiment, "study", 3, "s1")
    history = real.get_metric_history(run_id, "val/acc/top1")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.7)]  # written once
