"""MLflow bookkeeping of a sweep: one experiment per study, a parent run per sweep, a child run
per trial, written only by the orchestrator.

Trials never talk to MLflow: the orchestrator creates the experiment (and so the database) once
before any trial starts (STACK.md item 4), owns every run's status (a crashed trial is FAILED),
and logs a finished trial from what the study's Optuna storage holds (params, per-epoch
history, final metrics, cost) plus the stage files (dumped configs, logs) as artifacts. All
calls go through one background thread, so a slow or unreachable tracking server never stalls
the scheduling loop. A call that fails (a tracking server restarting, a network blip) is
retried with exponential backoff (1 s, 2 s, 4 s, ... at most 30 s between tries) for up to
``retry_for`` seconds, later writes queued behind it in order; every job is idempotent (a run is
found again by its tags before one is created), so a retried call never duplicates a run. Only
when MLflow stays unreachable for that long, or cannot be reached when the sweep starts, does the
tracker go offline: the study's storage keeps everything, and ``mats-lab sync`` pushes the
trials later (:func:`sync_trial` completes a half-written run instead of adding one).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mats_lab.protocol import names

__all__ = ["Tracker", "artifact_location", "ensure_experiment", "sync_trial", "trial_run_tags"]

log = logging.getLogger("mats_lab.tracking")

STUDY_TAG = names.TAG_STUDY
TRIAL_TAG = names.TAG_TRIAL
SWEEP_TAG = names.TAG_SWEEP
SYNCED_TAG = names.TAG_SYNCED
_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def trial_run_tags(study: str, number: int, sweep: str) -> dict[str, str]:
    """Tags that find a trial's run again: study, trial number and the sweep that ran it (trial
    numbers restart after ``--fresh``; sweep ids do not)."""
    return {STUDY_TAG: study, TRIAL_TAG: str(number), SWEEP_TAG: sweep}


class Tracker:
    """MLflow client for one study, with a single writer thread."""

    def __init__(
        self, tracking_uri: str, study: str, retry_for: float = 600.0, backoff: float = 1.0
    ) -> None:
        self.tracking_uri = tracking_uri
        self.study = study
        self.retry_for = retry_for  # seconds one failing call is retried before going offline
        self.backoff = backoff  # first wait between tries (doubled each time, at most 30 s)
        self.online = True
        self.error = ""
        self.retries = 0  # failed calls that were tried again
        self._closing = threading.Event()
        self.parent_id: str | None = None
        self.experiment_id: str | None = None
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self.archived = ""  # the experiment a fresh start renamed (empty: none)

    # -- connection ---------------------------------------------------------------------------
    def connect(self, fresh: bool = False) -> bool:
        """Create the experiment (and the database) now, in this process; False if offline.

        ``fresh`` (``mats-lab sweep --fresh``): the study's existing experiment is renamed
        ``<study>-before-<time>`` (kept, nothing deleted) and a new one is created, so the old
        runs no longer mix with the new ones in the MLflow UI; :attr:`archived` names it."""
        # An unreachable server should cost seconds, not MLflow's minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        try:
            from mlflow.tracking import MlflowClient

            if self.tracking_uri.startswith("sqlite:///"):
                Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                    parents=True, exist_ok=True
                )
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
            old = self._client.get_experiment_by_name(self.study) if fresh else None
            if old is not None:
                self.archived = f"{self.study}-before-{time.strftime('%Y%m%d-%H%M%S')}"
                self._client.rename_experiment(old.experiment_id, self.archived)
            self.experiment_id = ensure_experiment(self._client, self.tracking_uri, self.study)
        except Exception as exc:  # noqa: BLE001 - any failure means: run without MLflow
            self._offline(exc)
            return False
        self._thread = threading.Thread(target=self._work, name="mlflow-writer", daemon=True)
        self._thread.start()
        return True

    def _offline(self, exc: BaseException) -> None:
        if self.online:
            log.warning(
                "MLflow at %s is unavailable (%s); results stay in the study storage, "
                "push them later with `mats-lab sync`",
                self.tracking_uri,
                exc,
            )
        self.online = False
        self.error = f"{type(exc).__name__}: {exc}"

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self.online:
                self._run(job)

    def _run(self, job: Callable[[], None]) -> None:
        """Run ``job``, retrying with exponential backoff through a tracking server restart;
        offline after ``retry_for`` seconds of failures (or when closing gives up)."""
        delay = self.backoff
        began = time.monotonic()
        while True:
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - any failure: retry, then run without MLflow
                waited = time.monotonic() - began
                if waited >= self.retry_for or self._closing.is_set():
                    self._offline(exc)
                    return
                self.retries += 1
                log.warning(
                    "MLflow at %s failed (%s: %s); retrying in %.0f s",
                    self.tracking_uri,
                    type(exc).__name__,
                    str(exc).splitlines()[0][:200] if str(exc) else "",
                    delay,
                )
                if self._closing.wait(min(delay, max(0.0, self.retry_for - waited))):
                    self._offline(exc)
                    return
                delay = min(2 * delay, 30.0)
                continue
            if delay > self.backoff:
                log.warning("MLflow at %s answers again", self.tracking_uri)
            return

    def submit(self, job: Callable[[], None]) -> None:
        if self._thread is not None and self.online:
            self._queue.put(job)

    def close(self, timeout: float = 120.0) -> None:
        """Finish queued writes (at most ``timeout`` seconds, retries included); what is left
        then stays in the study storage for ``mats-lab sync``."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            if self._thread.is_alive():  # still retrying: give up, go offline
                self._closing.set()
                self._thread.join(30.0)
            self._thread = None

    # -- runs ---------------------------------------------------------------------------------
    def start_parent(self, sweep_id: str, tags: dict[str, str], params: dict[str, Any]) -> None:
        def job() -> None:
            # Idempotent: a try whose answer was lost (server restarting) created it already.
            run = find_parent(self._client, str(self.experiment_id), self.study, sweep_id)
            if run is None:
                run = self._client.create_run(
                    self.experiment_id,
                    run_name=f"sweep-{sweep_id}",
                    tags={STUDY_TAG: self.study, SWEEP_TAG: sweep_id, **tags},
                )
            self.parent_id = run.info.run_id
            for key, value in params.items():
                self._client.log_param(self.parent_id, key, _short(value))

        self.submit(job)

    def end_parent(self, status: str, summary: dict[str, float]) -> None:
        def job() -> None:
            if self.parent_id is None:
                return
            for key, value in summary.items():
                self._client.log_metric(self.parent_id, key, float(value))
            self._client.set_terminated(self.parent_id, status=status)

        self.submit(job)

    def close_stale_parents(self, sweep_id: str) -> None:
        """Mark KILLED the parent runs of this study's earlier sweeps left RUNNING (a sweep
        killed with SIGKILL never ended its run). Only a sweep that owns its study calls this:
        workers sharing a study cannot tell a dead worker's parent from a live one's."""

        def job() -> None:
            runs = self._client.search_runs(
                [str(self.experiment_id)],
                filter_string=(
                    f"tags.`{STUDY_TAG}` = '{self.study}' and attributes.status = 'RUNNING'"
                ),
                max_results=1000,
            )
            for run in runs:
                tags = run.data.tags
                if TRIAL_TAG not in tags and tags.get(SWEEP_TAG) != sweep_id:
                    self._client.set_terminated(run.info.run_id, status="KILLED")

        self.submit(job)

    def log_trial(self, record: dict, on_done: Callable[[str], None] | None = None) -> None:
        """Log one finished trial (a :func:`mats_lab.lab.records.trial_record`) as a child run."""

        def job() -> None:
            run_id = sync_trial(
                self._client, str(self.experiment_id), self.study, record, self.parent_id
            )
            if on_done is not None:
                on_done(run_id)

        self.submit(job)


def artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of a local SQLite store go next to it (``mlartifacts/``), not into the current
    directory's ``./mlruns`` (MLflow's default); servers choose their own."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def ensure_experiment(client: Any, tracking_uri: str, name: str) -> str:
    """The id of experiment ``name``, created (with its artifact location) if missing."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(
            client.create_experiment(name, artifact_location=artifact_location(tracking_uri))
        )
    except Exception:  # another worker created it at the same moment: use theirs
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def find_parent(client: Any, experiment_id: str, study: str, sweep: str) -> Any:
    """The parent run of sweep ``sweep`` (the study's run with that sweep tag and no trial
    tag), or None."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{STUDY_TAG}` = '{study}' and tags.`{SWEEP_TAG}` = '{sweep}'",
        max_results=1000,
    )
    parents = [r for r in runs if TRIAL_TAG not in r.data.tags]
    return parents[0] if parents else None


def _find_run(client: Any, experiment_id: str, study: str, number: int, sweep: str) -> Any:
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{STUDY_TAG}` = '{study}' and tags.`{TRIAL_TAG}` = '{number}' "
            f"and tags.`{SWEEP_TAG}` = '{sweep}'"
        ),
        max_results=5,
    )
    return runs[0] if runs else None


def _complete(run: Any) -> bool:
    """Everything of the run was written: marked synced *and* ended (the two are separate
    calls, and a tracking server can go away between them)."""
    return run.data.tags.get(SYNCED_TAG) == "1" and run.info.status != "RUNNING"


def is_synced(client: Any, experiment_id: str, study: str, number: int, sweep: str) -> bool:
    run = _find_run(client, experiment_id, study, number, sweep)
    return run is not None and _complete(run)


def sync_trial(
    client: Any, experiment_id: str, study: str, record: dict, parent_id: str | None
) -> str:
    """Create (or complete) the child run of one finished trial; returns its run id."""
    from mlflow.entities import Metric, Param, RunTag

    number = int(record["number"])
    sweep = str(record.get("sweep", ""))
    run = _find_run(client, experiment_id, study, number, sweep)
    status = _STATUS.get(record["state"], "FAILED")
    if run is not None and run.data.tags.get(SYNCED_TAG) == "1":
        if run.info.status == "RUNNING":  # written, but the call that ends it was lost
            client.set_terminated(run.info.run_id, status=status)
        return run.info.run_id
    tags = trial_run_tags(study, number, sweep) | {
        k: str(v) for k, v in record.get("tags", {}).items()
    }
    if parent_id:
        tags["mlflow.parentRunId"] = parent_id
    if run is None:
        run = client.create_run(experiment_id, run_name=record["name"], tags=tags)
    run_id = run.info.run_id
    params = [Param(k, _short(v)) for k, v in record.get("params", {}).items()]
    timestamp = int(record.get("end_time", 0) * 1000) or None
    metrics = []
    for name, points in record.get("history", {}).items():
        for step, value in points:
            if value is not None:
                metrics.append(Metric(name, float(value), timestamp or 0, int(step)))
    for name, value in record.get("metrics", {}).items():
        if name in record.get("history", {}):
            continue  # the history's last epoch is the final value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics.append(Metric(name, float(value), timestamp or 0, 0))
    existing = set(run.data.params)
    params = [p for p in params if p.key not in existing]
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start : start + 100])
    for start in range(0, len(metrics), 500):
        client.log_batch(run_id, metrics=metrics[start : start + 500])
    for path, folder in record.get("artifacts", []):
        if Path(path).is_file():
            client.log_artifact(run_id, path, artifact_path=folder)
    client.set_tag(run_id, SYNCED_TAG, "1")
    client.set_terminated(run_id, status=status)
    return run_id
