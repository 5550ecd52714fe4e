"""What a finished trial leaves behind, as one plain dict: the unit of MLflow logging, of
``mats-lab sync`` and of the report.

Everything comes from the study's Optuna storage (the source of truth): params, state, the
``seed``/``metrics``/``history``/``stages`` user attributes the orchestrator wrote. Artifacts
(dumped configs, logs) are paths in the stage work dirs, logged when they still exist.

Only the standard library and the trial contract (:mod:`mats_lab.protocol`) are imported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mats_lab.protocol.records import trial_machine

__all__ = ["trial_record"]


def trial_record(trial: Any, commit: str = "unknown") -> dict:
    """A finished Optuna ``FrozenTrial`` as a record (see :mod:`mats_lab.lab.tracking`)."""
    attrs = trial.user_attrs
    seed = attrs.get("seed", 0)
    params = dict(trial.params) | {"seed": seed}
    name = f"trial-{trial.number:04d} " + ", ".join(f"{k}={v}" for k, v in params.items())
    stages = attrs.get("stages", [])
    artifacts: list[tuple[str, str]] = []
    for stage in stages:
        work_dir = Path(stage.get("work_dir", ""))
        for file in ("config.py", "stage.log", "result.json"):
            artifacts.append((str(work_dir / file), f"stages/{stage.get('name', 'stage')}"))
    tags = {
        "git_commit": commit,
        "state": trial.state.name,
        "point_key": attrs.get("point_key", ""),
    }
    for stage in stages:
        if stage.get("config_hash"):
            tags[f"config_hash.{stage['name']}"] = stage["config_hash"]
        tags[f"reused.{stage.get('name')}"] = str(bool(stage.get("reused")))
    if machine := trial_machine(stages):
        tags["machine"] = machine
    if attrs.get("failure"):
        tags["failure"] = str(attrs["failure"])
    if attrs.get("log_tail"):
        tags["log_tail"] = str(attrs["log_tail"])[-4000:]
    end = trial.datetime_complete.timestamp() if trial.datetime_complete else 0.0
    return {
        "number": trial.number,
        "sweep": str(attrs.get("sweep", "")),
        "name": name,
        "state": trial.state.name,
        "params": params | attrs.get("variables", {}),
        "metrics": dict(attrs.get("metrics", {})),
        "history": dict(attrs.get("history", {})),
        "tags": tags,
        "artifacts": artifacts,
        "end_time": end,
    }
