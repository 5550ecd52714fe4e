"""Past one node: two `mats-lab worker` processes act as two machines on one study.

Each worker has its own study folder (its own copy of the study file, as on its own checkout),
and they share what a cluster shares: a real PostgreSQL server for the Optuna study
(tests/pg_server.py), a real `mlflow server` with a PostgreSQL backend store and an artifact
destination (tests/mlflow_server.py, loopback only), and a stage store folder standing for a
shared filesystem. Trials are the fake stage (`mats_lab.lab.fake_stage`: sleeps, writes
per-epoch "checkpoints" and resumes from them), on a 6-point grid whose fine-tunings all load one
shared pre-training.

Shown here: both workers run trials (fair sharing: neither gets less than a third), every point
completes exactly once, the shared stage trains once, and the MLflow server (read through its
REST API) holds one finished child run per point; with the worker that runs the pre-training
SIGKILLed mid-stage, the other fails and re-queues its trials after the grace period, resumes
the pre-training from its checkpoint in the store and completes the study; with the tracking
server stopped and restarted in the middle of a sweep, no trial is lost and no run duplicated.

Under ``CI=true`` a missing PostgreSQL or mlflow server is a failure (conftest, ci_guard).
Every server and worker a test starts is stopped by it. Loops are bounded by counts.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from mats_lab.protocol import names

REPO = Path(__file__).resolve().parents[1]
PT = str(REPO / "mm_configs/mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py")
FT = str(REPO / "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py")
KEEPS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]  # 6 grid points, one shared pre-training
HEARTBEAT = 2  # seconds: grace period 8 s
_names = itertools.count()


def study_text(
    name: str, pretrain_s: float, pretrain_epochs: int, finetune_s: float, keeps: int = len(KEEPS)
) -> str:
    """A fake-stage study: one shared pre-training, fine-tunings at the first ``keeps`` ratios."""
    return yaml.safe_dump(
        {
            "name": name,
            "stages": [
                {
                    "name": "pretrain",
                    "config": PT,
                    "overrides": {"fake.duration": pretrain_s, "fake.epochs": pretrain_epochs},
                },
                {
                    "name": "finetune",
                    "config": FT,
                    "load_from": "pretrain",
                    "overrides": {"fake.duration": finetune_s, "fake.epochs": 3},
                },
            ],
            "space": {"keep_ratio": {"grid": KEEPS[:keeps], "stages": ["finetune"]}},
            "command": [sys.executable, "-m", "mats_lab.lab.fake_stage"],
        }
    )


@pytest.fixture(scope="module")
def mlflow_server(postgres_server, tmp_path_factory):
    """A real `mlflow server` (PostgreSQL backend store) on 127.0.0.1 for this module."""
    from ci_guard import require
    from mlflow_server import MlflowUnavailable, start_mlflow

    base = tmp_path_factory.mktemp("mlflow")
    backend = postgres_server.create_database(f"mlflow_{os.getpid()}")
    try:
        server = start_mlflow(backend, base / "artifacts", base / "server.log")
    except MlflowUnavailable as exc:
        require(False, f"no mlflow server: {exc}")
    try:
        yield server
    finally:
        server.stop()


class Worker:
    """One `mats-lab worker` process in a folder of its own (a node)."""

    def __init__(self, folder: Path, text: str, storage: str, tracking: str, store: Path):
        folder.mkdir(parents=True)
        self.folder = folder
        self.study = folder / "study.yaml"
        self.study.write_text(text)
        self.log_path = folder / "worker.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "mats_lab.cli.main", "worker", str(self.study)]
        command += ["--storage", storage, "--tracking-uri", tracking, "--devices", "1"]
        command += ["--stage-store", str(store), "--heartbeat", str(HEARTBEAT)]
        self.proc = subprocess.Popen(  # noqa: S603 - an argument list
            command, cwd=folder, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def worker_id(self) -> str | None:
        found = re.search(r"worker ([0-9a-f]{8}) on ", self.output)
        return found.group(1) if found else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log.close()


def wait_all(workers: list[Worker], polls: int = 1200, every: float = 0.5) -> None:
    """Wait (bounded: ``polls`` polls) until every worker exited."""
    for _ in range(polls):
        if all(w.proc.poll() is not None for w in workers):
            return
        time.sleep(every)
    raise AssertionError(
        "workers still running after the bounded wait:\n"
        + "\n".join(w.output[-3000:] for w in workers)
    )


def complete_once(
    storage: str, name: str, outputs: str, points: int = len(KEEPS)
) -> list[optuna.trial.FrozenTrial]:
    """Every one of the ``points`` grid points COMPLETE exactly once, nothing left queued or
    running."""
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    keys = Counter(t.user_attrs[names.ATTR_POINT_KEY] for t in complete)
    assert len(keys) == points, f"lost points: {points - len(keys)}\n{outputs}"
    assert set(keys.values()) == {1}, f"duplicated points: {keys}\n{outputs}"
    left = [t.number for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    assert not left, f"trials left queued or running: {left}\n{outputs}"
    return complete


def child_runs(server, name: str) -> list[dict]:
    """The trial runs of experiment ``name``, read through the server's REST API."""
    runs = server.runs(name)
    return [r for r in runs if _tag(r, names.TAG_TRIAL) is not None]


def _tag(run: dict, key: str) -> str | None:
    for tag in run.get("data", {}).get("tags", []):
        if tag["key"] == key:
            return tag["value"]
    return None


def one_finished_child_per_point(server, name: str, complete: list) -> None:
    children = child_runs(server, name)
    numbers = Counter(int(_tag(r, names.TAG_TRIAL) or -1) for r in children)
    assert set(numbers.values()) == {1}, f"duplicated runs: {numbers}"
    assert set(numbers) == {t.number for t in complete}
    assert {r["info"]["status"] for r in children} == {"FINISHED"}
    for run in children:  # complete: the final metric and the per-epoch history are there
        metrics = {m["key"] for m in run["data"].get("metrics", [])}
        assert "val/acc/top1" in metrics, metrics


def stage_dirs(store: Path, stage: str) -> list[Path]:
    return [p for p in (store / "stages").glob(f"{stage}-*") if p.is_dir()]


def test_two_nodes_share_a_study_fairly(tmp_path, postgres_url, mlflow_server):
    name = f"nodes-{next(_names)}-{os.getpid()}"
    text = study_text(name, pretrain_s=4.0, pretrain_epochs=4, finetune_s=3.0)
    store = tmp_path / "store"
    workers = [
        Worker(tmp_path / node, text, postgres_url, mlflow_server.url, store)
        for node in ("node-a", "node-b")
    ]
    try:
        wait_all(workers)
    finally:
        for worker in workers:
            worker.stop()
    outputs = "\n".join(w.output[-4000:] for w in workers)
    for worker in workers:
        assert worker.proc.returncode == 0, worker.output

    complete = complete_once(postgres_url, name, outputs)
    per_worker = Counter(t.user_attrs[names.ATTR_SWEEP] for t in complete)
    assert len(per_worker) == 2 and min(per_worker.values()) >= len(KEEPS) / 3, (
        f"unfair split {per_worker}\n{outputs}"
    )
    # The shared pre-training trained once, in the store; no node kept a stage dir locally.
    pretrain = stage_dirs(store, "pretrain")
    assert len(pretrain) == 1 and (pretrain[0] / "attempts").read_text() == "1"
    assert len(stage_dirs(store, "finetune")) == len(KEEPS)
    for worker in workers:
        assert not (worker.folder / "runs" / "study" / "stages").exists()
    for ft in stage_dirs(store, "finetune"):
        result = json.loads((ft / "result.json").read_text())
        assert result["load_from"].startswith(str(pretrain[0]))
    one_finished_child_per_point(mlflow_server, name, complete)
    handed = sum(w.output.count("handed back") for w in workers)
    print(f"trials per worker: {sorted(per_worker.values())}; hand-backs: {handed}")


def test_a_killed_node_is_recovered_and_its_stage_resumed(tmp_path, postgres_url, mlflow_server):
    name = f"killed-{next(_names)}-{os.getpid()}"
    text = study_text(name, pretrain_s=8.0, pretrain_epochs=8, finetune_s=1.5)
    store = tmp_path / "store"
    workers = [
        Worker(tmp_path / node, text, postgres_url, mlflow_server.url, store)
        for node in ("node-a", "node-b")
    ]
    try:
        # Wait (bounded) until the pre-training has written its second epoch's checkpoint.
        holder = None
        for _ in range(1200):
            dirs = stage_dirs(store, "pretrain")
            marker = dirs[0] / "last_checkpoint" if dirs else None
            if marker is not None and marker.is_file() and marker.read_text().strip():
                epoch = int(Path(marker.read_text().strip()).stem.split("_")[-1])
                if epoch >= 2:
                    header = re.findall(
                        r"\(worker ([0-9a-f]{8})\)", (dirs[0] / "stage.log").read_text()
                    )
                    holder = next(w for w in workers if w.worker_id == header[-1])
                    break
            assert all(w.proc.poll() is None for w in workers), "\n".join(w.output for w in workers)
            time.sleep(0.1)
        assert holder is not None, "the pre-training never reached epoch 2"
        survivor = next(w for w in workers if w is not holder)
        holder.proc.send_signal(signal.SIGKILL)  # the node is lost: no clean-up runs
        killed_at = time.time()
        holder.proc.wait()
        wait_all([survivor])
    finally:
        for worker in workers:
            worker.stop()
    outputs = "\n".join(w.output[-4000:] for w in workers)
    assert holder.proc.returncode == -signal.SIGKILL
    assert survivor.proc.returncode == 0, survivor.output

    complete = complete_once(postgres_url, name, outputs)
    study = optuna.load_study(study_name=name, storage=postgres_url)
    lost = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.user_attrs.get(names.ATTR_SWEEP) == holder.worker_id
    ]
    assert lost, f"the killed worker's trials were not failed\n{outputs}"
    assert {t.user_attrs.get(names.ATTR_FAILURE) for t in lost} == {names.FAILURE_INTERRUPTED}
    # Failed by the survivor once the grace period (4 heartbeats) ran out, and soon after.
    latency = max(t.datetime_complete.timestamp() for t in lost) - killed_at
    assert latency <= 4 * HEARTBEAT + 3 * HEARTBEAT + 15, f"recovered {latency:.1f} s after"
    assert "failed and re-queued trials whose worker stopped beating" in survivor.output
    # The pre-training was resumed from its checkpoint in the store, and so trained once.
    pretrain = stage_dirs(store, "pretrain")
    assert len(pretrain) == 1
    assert "resumes from checkpoint" in survivor.output
    assert "resuming from checkpoint" in (pretrain[0] / "stage.log").read_text()
    result = json.loads((pretrain[0] / "result.json").read_text())
    assert result["resumed_from"] is not None and int(result["resumed_from"]) >= 2
    assert (pretrain[0] / "attempts").read_text() == "2"
    one_finished_child_per_point(mlflow_server, name, complete)
    print(f"recovery latency after SIGKILL: {latency:.1f} s (grace {4 * HEARTBEAT} s)")


def test_tracking_server_restart_loses_and_duplicates_nothing(
    tmp_path, postgres_server, postgres_url
):
    from ci_guard import require
    from mlflow_server import MlflowUnavailable, start_mlflow

    name = f"restart-{next(_names)}-{os.getpid()}"
    backend = postgres_server.create_database(f"mlflow_restart_{os.getpid()}")
    try:
        server = start_mlflow(backend, tmp_path / "artifacts", tmp_path / "server.log")
    except MlflowUnavailable as exc:
        require(False, f"no mlflow server: {exc}")
    # three trials: one logged before the outage, one finished during it, one after it
    text = study_text(name, pretrain_s=1.0, pretrain_epochs=2, finetune_s=2.0, keeps=3)
    store = tmp_path / "store"
    workers: list[Worker] = []
    try:
        workers = [Worker(tmp_path / "node-a", text, postgres_url, server.url, store)]
        for _ in range(1200):  # bounded: until the first trial run is in the server
            if _experiment_exists(server, name) and child_runs(server, name):
                break
            assert workers[0].proc.poll() is None, workers[0].output
            time.sleep(0.1)
        server.stop()  # the tracking server goes away mid-sweep ...
        for _ in range(480):  # ... until a call to it failed and a trial finished (bounded):
            output = workers[0].output  # on a loaded machine a fixed outage can pass unseen
            if "retrying in" in output and output.count(" COMPLETE (") >= 2:
                break
            time.sleep(0.25)
        server.start()  # ... and comes back on the same port
        wait_all(workers)
    finally:
        for worker in workers:
            worker.stop()
        try:
            sync = subprocess.run(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "mats_lab.cli.main",
                    "sync",
                    str(tmp_path / "node-a" / "study.yaml"),
                ]
                + ["--storage", postgres_url, "--tracking-uri", server.url],
                capture_output=True,
                text=True,
                check=False,
            )
            runs = child_runs(server, name)
        finally:
            server.stop()
    output = workers[0].output
    assert workers[0].proc.returncode == 0, output
    assert "retrying in" in output, f"no tracking call failed while the server was down\n{output}"
    assert sync.returncode == 0, sync.stdout + sync.stderr
    complete = complete_once(postgres_url, name, output, points=3)
    numbers = Counter(int(_tag(r, names.TAG_TRIAL) or -1) for r in runs)
    assert set(numbers.values()) == {1}, f"duplicated runs: {numbers}"
    assert set(numbers) == {t.number for t in complete}
    assert {r["info"]["status"] for r in runs} == {"FINISHED"}
    print(f"sync after the restart: {sync.stdout.strip()}")


def _experiment_exists(server, name: str) -> bool:
    import urllib.error

    try:
        server.rest(f"experiments/get-by-name?experiment_name={name}")
    except urllib.error.HTTPError:
        return False
    return True


def test_a_dead_workers_sampled_trials_are_failed_and_queued_again(tmp_path, postgres_url):
    """Recovery for a sampled (non-grid) study, whatever the trial was doing: a trial asked by
    a worker that then stopped beating is failed (marked interrupted) by another worker's
    driver once the grace period has passed, and its point queued again with its params; a
    trial still beaten is left alone."""
    from mats_lab.lab.driver import StudyDriver
    from mats_lab.lab.study import create_sampler, open_storage, open_study
    from mats_lab.lab.tracking import Tracker
    from mats_lab.protocol.spec import load_study

    name = f"sampled-{next(_names)}-{os.getpid()}"
    path = tmp_path / "study.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "stages": [{"name": "finetune", "config": FT}],
                "space": {"keep_ratio": {"float": [0.2, 0.8]}},
                "sampler": {"type": "random", "seed": 3},
                "budget": {"trials": 10},
                "command": [sys.executable, "-m", "mats_lab.lab.fake_stage"],
            }
        )
    )
    spec = load_study(path)
    said: list[str] = []

    def driver(sweep: str) -> StudyDriver:
        study = open_study(spec, open_storage(postgres_url, heartbeat_interval=1))
        study.sampler = create_sampler(spec, seed=len(sweep))  # each worker its own, as Sweep
        return StudyDriver(
            spec,
            tmp_path / sweep,
            REPO,
            study,
            Tracker("http://127.0.0.1:9", name),
            said.append,
            commit="test",
            sweep_id=sweep,
            heartbeats=True,
        )

    dead, alive = driver("dead"), driver("alive")
    lost = dead.ask()  # the dead worker's trial: asked, beaten once, then nothing
    kept = alive.ask()
    assert lost is not None and kept is not None
    recovered: list[int] = []
    for _ in range(40):  # bounded: the grace period is 4 heartbeats of 1 s
        recovered += alive.recover_stale([kept])  # beats for its own trial, fails the dead
        if recovered:
            break
        time.sleep(0.25)
    assert recovered == [lost.number], said
    stored = {t.number: t for t in alive.study.get_trials(deepcopy=False)}
    assert stored[lost.number].state == TrialState.FAIL
    assert stored[lost.number].user_attrs[names.ATTR_FAILURE] == names.FAILURE_INTERRUPTED
    assert stored[kept.number].state == TrialState.RUNNING
    queued = [t for t in stored.values() if t.state == TrialState.WAITING]
    assert [t.system_attrs["fixed_params"] for t in queued] == [stored[lost.number].params]
    assert queued[0].user_attrs[names.ATTR_POINT_KEY] == lost.point.key
    # The dead worker, should it come back, finds its trial gone instead of crashing.
    dead.fail(lost, "late", "crash")
    assert lost.told and any("failed by another worker" in line for line in said)
