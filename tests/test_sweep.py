"""The sweep orchestrator end to end with the fake trial command (no model): completion, MLflow
records, stage reuse, retries, config errors, pruning, kills and resume, MLflow outages."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from optuna.trial import TrialState

from mats_lab.lab.sweep import Sweep, SweepOptions
from mats_lab.protocol.spec import load_study

FAKE = [sys.executable, "-m", "mats_lab.lab.fake_stage"]
FT = "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
PT = "mm_configs/mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"


def study_file(tmp_path: Path, **fields) -> Path:
    data = {
        "name": "t",
        "stages": [{"name": "finetune", "config": FT, "overrides": {"fake.duration": 0.3}}],
        "space": {"keep_ratio": {"grid": [0.3, 0.6]}},
        "resources": {"devices": 2},
        "command": FAKE,
        "output": str(tmp_path / "study"),
    }
    data.update(fields)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_sweep(path: Path, **options) -> tuple[int, str]:
    out = io.StringIO()
    spec = load_study(path)
    code = Sweep(spec, path, SweepOptions(out=out, poll=0.05, **options)).run()
    return code, out.getvalue()


def trials(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    from mats_lab.lab.study import open_storage

    storage = open_storage(f"journal://{tmp_path / 'study' / 'optuna.journal'}")
    return optuna.load_study(study_name="t", storage=storage).get_trials()


def completed_keys(tmp_path: Path) -> list[str]:
    return [t.user_attrs["point_key"] for t in trials(tmp_path) if t.state == TrialState.COMPLETE]


def runs(tmp_path: Path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'study' / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["t"])


def test_grid_completes_and_mlflow_has_parent_and_children(tmp_path):
    path = study_file(tmp_path, seeds=[0, 1])
    code, out = run_sweep(path)
    assert code == 0, out
    keys = completed_keys(tmp_path)
    assert len(keys) == 4 and len(set(keys)) == 4  # 2 keep ratios x 2 seeds, once each
    df = runs(tmp_path)
    parents = df[df["tags.mats_lab.trial"].isna()]
    children = df[df["tags.mats_lab.trial"].notna()]
    assert len(parents) == 1 and len(children) == 4
    assert set(children["tags.mlflow.parentRunId"]) == {parents.run_id.iloc[0]}
    assert set(children["status"]) == {"FINISHED"}
    assert set(children["params.keep_ratio"]) == {"0.3", "0.6"}
    assert set(children["params.seed"]) == {"0", "1"}
    # final metric, cost, and the per-epoch history (3 epochs of the fake run)
    row = children[children["params.keep_ratio"] == "0.6"].iloc[0]
    assert row["metrics.val/acc/top1"] == pytest.approx(0.74)
    assert row["metrics.train_gmacs"] == pytest.approx(0.6)
    for column in ("metrics.peak_memory_mb", "metrics.throughput", "metrics.wall_time_s"):
        assert row[column] > 0
    history = mlflow.tracking.MlflowClient().get_metric_history(row.run_id, "val/acc/top1")
    assert [m.step for m in history] == [1, 2, 3]
    assert "git_commit" in row.index.str.removeprefix("tags.").tolist()
    assert "COMPLETE 4" in out
    # artifacts (dumped configs, logs) next to the store, not in the current directory
    artifacts = mlflow.tracking.MlflowClient().list_artifacts(row.run_id, "stages/finetune")
    assert {Path(a.path).name for a in artifacts} >= {"stage.log", "result.json"}
    assert (tmp_path / "study" / "mlartifacts").is_dir()


def test_second_run_resumes_without_rerunning(tmp_path):
    path = study_file(tmp_path)
    assert run_sweep(path)[0] == 0
    code, out = run_sweep(path)
    assert code == 0
    assert "0 queued now" in out
    assert len(trials(tmp_path)) == 2


def test_shared_stage_runs_once(tmp_path):
    stages = [
        {"name": "pretrain", "config": PT, "overrides": {"fake.duration": 0.3}},
        {
            "name": "finetune",
            "config": FT,
            "load_from": "pretrain",
            "overrides": {"fake.duration": 0.3},
        },
    ]
    space = {"keep_ratio": {"grid": [0.3, 0.45, 0.6], "stages": ["finetune"]}}
    path = study_file(tmp_path, stages=stages, space=space)
    code, out = run_sweep(path)
    assert code == 0, out
    pre_dirs = list((tmp_path / "study" / "stages").glob("pretrain-*"))
    assert len(pre_dirs) == 1 and (pre_dirs[0] / "attempts").read_text() == "1"
    reused = [
        s["reused"]
        for t in trials(tmp_path)
        for s in t.user_attrs["stages"]
        if s["name"] == "pretrain"
    ]
    assert sorted(reused) == [False, True, True]
    # a trial that reused the pre-training still carries its per-epoch curve (3 fake epochs)
    for t in trials(tmp_path):
        assert [e for e, _ in t.user_attrs["history"]["pretrain/train/loss"]] == [1, 2, 3]
    # every fine-tuning loaded the one pre-training checkpoint
    for ft in (tmp_path / "study" / "stages").glob("finetune-*"):
        result = json.loads((ft / "result.json").read_text())
        assert result["load_from"].startswith(str(pre_dirs[0]))


def test_crash_is_retried_and_resumes_from_checkpoint(tmp_path):
    path = study_file(
        tmp_path,
        stages=[
            {
                "name": "finetune",
                "config": FT,
                "overrides": {"fake.duration": 0.6, "fake.epochs": 4, "fake.fail_times": 1},
            }
        ],
        space={"keep_ratio": {"grid": [0.5]}},
    )
    code, out = run_sweep(path)
    assert code == 1  # a trial failed on the way (then succeeded on retry)
    states = sorted(t.state.name for t in trials(tmp_path))
    assert states == ["COMPLETE", "FAIL"]
    failed = next(t for t in trials(tmp_path) if t.state == TrialState.FAIL)
    assert failed.user_attrs["failure"] == "crash"
    assert "simulated crash" in failed.user_attrs["log_tail"]
    log = next((tmp_path / "study" / "stages").glob("finetune-*/stage.log")).read_text()
    assert "resuming from checkpoint" in log
    df = runs(tmp_path)
    assert sorted(df[df["tags.mats_lab.trial"].notna()]["status"]) == ["FAILED", "FINISHED"]


def test_exhausted_retries_fail_the_point_and_the_study_goes_on(tmp_path):
    path = study_file(
        tmp_path,
        stages=[{"name": "finetune", "config": FT, "overrides": {"fake.duration": 0.2}}],
        space={"keep_ratio": {"grid": [0.3, 0.6]}, "fake.fail_times": {"grid": [0, 9]}},
        retries=1,
    )
    code, out = run_sweep(path)
    assert code == 1
    by_state: dict[str, int] = {}
    for t in trials(tmp_path):
        by_state[t.state.name] = by_state.get(t.state.name, 0) + 1
    assert by_state == {"COMPLETE": 2, "FAIL": 4}  # 2 failing points x (1 try + 1 retry)
    assert "FAILED (crash)" in out


def test_config_error_is_not_retried(tmp_path):
    path = study_file(
        tmp_path,
        stages=[{"name": "finetune", "config": FT, "overrides": {"fake.config_error": True}}],
        space={"keep_ratio": {"grid": [0.5]}},
        retries=3,
    )
    code, out = run_sweep(path)
    assert code == 1
    assert [t.user_attrs["failure"] for t in trials(tmp_path)] == ["config"]
    assert "stage config error" in out


def test_median_pruner_stops_a_worse_trial(tmp_path):
    path = study_file(
        tmp_path,
        stages=[
            {
                "name": "finetune",
                "config": FT,
                "overrides": {"fake.duration": 3.0, "fake.epochs": 6},
            }
        ],
        space={"keep_ratio": {"grid": [0.9, 0.1]}},
        pruner={"type": "median", "args": {"n_startup_trials": 1, "n_warmup_steps": 0}},
        resources={"devices": 1},
    )
    code, out = run_sweep(path)
    assert code == 0, out
    states = {t.params["keep_ratio"]: t.state.name for t in trials(tmp_path)}
    assert states == {0.9: "COMPLETE", 0.1: "PRUNED"}
    pruned = next(t for t in trials(tmp_path) if t.state == TrialState.PRUNED)
    assert 1 <= max(pruned.intermediate_values) < 6


def test_unreachable_mlflow_keeps_results_and_sync_pushes_them(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    path = study_file(tmp_path)
    code, out = run_sweep(path, tracking_uri="http://127.0.0.1:9")
    assert code == 0
    assert "mats-lab sync" in out
    assert len(completed_keys(tmp_path)) == 2
    from mats_lab.lab.sync import sync_study

    uri = f"sqlite:///{tmp_path / 'study' / 'mlflow.db'}"
    assert sync_study(load_study(path), path, None, uri) == (2, 2)
    assert sync_study(load_study(path), path, None, uri) == (0, 2)  # idempotent
    children = runs(tmp_path)
    children = children[children["tags.mats_lab.trial"].notna()]
    assert len(children) == 2 and set(children["status"]) == {"FINISHED"}


def _sweep_process(path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mats_lab.cli.main", "sweep", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError("condition not reached")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_sweep_resumes_and_completes_each_point_once(tmp_path, sig):
    path = study_file(
        tmp_path,
        stages=[
            {
                "name": "finetune",
                "config": FT,
                "overrides": {"fake.duration": 3.0, "fake.epochs": 6},
            }
        ],
        space={"keep_ratio": {"grid": [0.3, 0.5, 0.7]}},
        resources={"devices": 2},
    )
    proc = _sweep_process(path)
    stages = tmp_path / "study" / "stages"
    # kill once a trial has written a checkpoint but not finished
    _wait_for(lambda: any(stages.glob("finetune-*/epoch_2.ckpt")))
    os.kill(proc.pid, sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    time.sleep(0.3)  # children die with the sweep (PDEATHSIG / SIGTERM)
    proc = _sweep_process(path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    keys = completed_keys(tmp_path)
    assert len(keys) == 3 and len(set(keys)) == 3
    logs = [p.read_text() for p in stages.glob("finetune-*/stage.log")]
    assert any("resuming from checkpoint" in log for log in logs)
    df = runs(tmp_path)  # MLflow's records are true after the kill
    assert (df["status"] != "RUNNING").all(), df[["status", "tags.mats_lab.trial"]]
    parents = df[df["tags.mats_lab.trial"].isna()]
    assert sorted(parents["status"]) == ["FINISHED", "KILLED"]
    children = df[df["tags.mats_lab.trial"].notna()]
    assert (children["status"] == "FAILED").sum() >= 1, "the killed trial's run is FAILED"
    assert (children["status"] == "FINISHED").sum() == 3
    for log in logs:  # no stage ever ran twice at once: attempts are sequential
        assert log.count("=== mats-lab: trial") >= 1


def test_fresh_starts_over_without_reusing_old_stages(tmp_path):
    path = study_file(tmp_path)
    assert run_sweep(path)[0] == 0
    code, out = run_sweep(path, fresh=True)
    assert code == 0 and "reused" not in out
    assert len(trials(tmp_path)) == 2  # the old study was deleted, the new one has 2 trials
    for attempts in (tmp_path / "study" / "stages").glob("*/attempts"):
        assert attempts.read_text() == "1"  # trained again from scratch, in a clean work dir
    df = runs(tmp_path)  # the new experiment: this sweep's runs only
    assert len(df[df["tags.mats_lab.trial"].isna()]) == 1
    assert len(df[df["tags.mats_lab.trial"].notna()]) == 2
    assert "earlier MLflow runs kept in experiment 't-before-" in out
    old = [e for e in mlflow.search_experiments() if e.name.startswith("t-before-")]
    assert len(old) == 1, "the first sweep's runs are kept, in their own experiment"
    kept = mlflow.search_runs(experiment_ids=[old[0].experiment_id])
    assert len(kept) == 3  # its parent and two children


def test_a_rerun_resumes_the_killed_trial_before_any_new_point(tmp_path):
    path = study_file(
        tmp_path,
        stages=[{"name": "finetune", "config": FT,
                 "overrides": {"fake.duration": 3.0, "fake.epochs": 6}}],
        space={"keep_ratio": {"grid": [0.3, 0.5, 0.7]}},
        resources={"devices": 1},
    )  # fmt: skip
    proc = _sweep_process(path)
    stages = tmp_path / "study" / "stages"
    _wait_for(lambda: any(stages.glob("finetune-*/epoch_2.ckpt")))
    killed = {p.parent.name for p in stages.glob("finetune-*/epoch_2.ckpt")}
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    time.sleep(0.3)
    code, out = run_sweep(path, max_trials=1)
    assert code == 0, out
    done = [t for t in trials(tmp_path) if t.state == TrialState.COMPLETE]
    assert len(done) == 1, "--max-trials 1 ran one trial"
    ran = {s["key"] for s in done[0].user_attrs["stages"]}
    assert ran == killed, "the killed trial, resumed from its checkpoint, went first"
    assert "resuming from checkpoint" in (stages / killed.pop() / "stage.log").read_text()


def _checkout(tmp_path: Path, name: str, store: Path, study: str = "t") -> Path:
    """A study file in a checkout of its own at ``tmp_path/name`` (a copy of mm_configs/),
    pre-training then fine-tuning (fake), its stages in the shared ``store``."""
    import shutil

    root = tmp_path / name
    if not (root / "mm_configs").is_dir():
        shutil.copytree(Path(__file__).resolve().parents[1] / "mm_configs", root / "mm_configs")
    stages = [
        {"name": "pretrain", "config": PT, "overrides": {"fake.duration": 0.2}},
        {"name": "finetune", "config": FT, "load_from": "pretrain",
         "overrides": {"fake.duration": 0.2}},
    ]  # fmt: skip
    path = root / "studies" / f"{study}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        yaml.safe_dump(
            {
                "name": study, "stages": stages, "command": FAKE,
                "space": {"keep_ratio": {"grid": [0.3, 0.6], "stages": ["finetune"]}},
                "resources": {"devices": 2}, "stage_store": str(store),
            }
        )
    )  # fmt: skip
    return path


def _reused(path: Path, study: str = "t") -> list[list[bool]]:
    from mats_lab.lab.study import open_storage

    journal = path.parent / "runs" / path.stem / "optuna.journal"
    found = optuna.load_study(study_name=study, storage=open_storage(f"journal://{journal}"))
    return [[s["reused"] for s in t.user_attrs["stages"]] for t in found.get_trials()]


def test_a_checkout_elsewhere_reuses_the_stages_of_a_shared_store(tmp_path):
    """Stage keys name configs relative to the repository, so a second machine (or clone)
    whose checkout sits at another path reuses what the first trained."""
    store = tmp_path / "store"
    first, second = _checkout(tmp_path, "a", store), _checkout(tmp_path, "b", store)
    assert run_sweep(first)[0] == 0
    trained = sorted(p.name for p in (store / "stages").iterdir())
    assert len(trained) == 3  # one pre-training, two fine-tunings
    code, out = run_sweep(second)
    assert code == 0, out
    assert _reused(second) == [[True, True], [True, True]], out
    assert sorted(p.name for p in (store / "stages").iterdir()) == trained
    assert all((store / "stages" / k / "attempts").read_text() == "1" for k in trained)


def test_stages_kept_under_their_old_keys_are_adopted_and_their_checkpoints_found(tmp_path):
    """A store written before keys were portable (the config's absolute path in the key):
    the sweep renames each folder to its new key and finds the checkpoint a finished
    pre-training recorded under its old folder's path."""
    from mats_lab.lab.space import grid_points, plan_stages
    from mats_lab.protocol.layout import find_root

    store = tmp_path / "store"
    path = _checkout(tmp_path, "a", store)
    assert run_sweep(path)[0] == 0
    spec = load_study(path)
    plans = {p.key: p for point in grid_points(spec)
             for p in plan_stages(spec, point, find_root(path), spec.command)}  # fmt: skip
    stages = store / "stages"
    for key, plan in plans.items():
        assert plan.legacy_key and plan.legacy_key != key
        old = stages / plan.legacy_key
        (stages / key).rename(old)
        for name in ("result.json", "last_checkpoint"):  # as the old folder wrote them
            file = old / name
            file.write_text(file.read_text().replace(str(stages / key), str(old)))
    for key in (k for k in plans if k.startswith("finetune-")):  # fine-tune again, from it
        import shutil

        shutil.rmtree(stages / plans[key].legacy_key)
    second = _checkout(tmp_path, "a", store, study="u")  # the same checkout, a new study
    code, out = run_sweep(second)
    assert code == 0, out
    assert "adopted from" in out
    assert sorted(p.name for p in stages.iterdir()) == sorted(plans)
    assert _reused(second, "u") == [[True, False], [True, False]], out
    pretrain = next(k for k in plans if k.startswith("pretrain-"))
    for key in (k for k in plans if k.startswith("finetune-")):
        result = json.loads((stages / key / "result.json").read_text())
        assert result["load_from"].startswith(str(stages / pretrain) + "/"), result["load_from"]
        assert Path(result["load_from"]).is_file()
