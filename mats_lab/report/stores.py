"""The two stores a sweep writes, each read into the same tidy frame, one row per trial.

- MLflow (:func:`mlflow_runs` + :func:`mlflow_frame`): one ``mlflow.search_runs`` over the
  study's experiment; the child runs are the trials (tags ``mats_lab.trial``,
  ``mats_lab.sweep``, ``state``, ``point_key``, ``failure``, ``machine``; params; the latest
  value of every metric).
- Optuna (:func:`load_optuna` + :func:`optuna_frame`): params and the ``seed``, ``variables``,
  ``metrics`` and ``history`` user attributes the sweep wrote. A metric with a per-epoch
  history takes its value at the last epoch, as MLflow's latest value does.

Columns: :data:`TRIAL_COLUMNS`, then ``params.<name>`` (the study's variables, bundles under
their label and expanded, typed: ``"0.3"`` -> ``0.3``) and ``metrics.<name>`` (floats).
Optuna and MLflow are imported inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from mats_lab.protocol import names
from mats_lab.protocol.layout import journal_path
from mats_lab.protocol.records import trial_machine

__all__ = [
    "TRIAL_COLUMNS",
    "complete_machines",
    "distinct_machines",
    "load_optuna",
    "missing",
    "mlflow_experiments",
    "mlflow_frame",
    "mlflow_runs",
    "optuna_frame",
    "tidy",
    "typed",
]

TRIAL_COLUMNS = [
    "study",
    "trial",
    "state",
    "seed",
    "point_key",
    "sweep",
    "failure",
    "error",
    "run_id",
    "source",
    "machine",
]
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
_STATUS_TO_STATE = {"FINISHED": "COMPLETE", "KILLED": "PRUNED", "FAILED": "FAIL"}


def distinct_machines(values: Any) -> list[str]:
    """The machines named in a ``machine`` column (a trial whose stages ran on several holds
    ``"a; b"``; empty or missing: not recorded), sorted."""
    return sorted({m for text in values if not missing(text) for m in str(text).split("; ") if m})


def complete_machines(trials: pd.DataFrame | None) -> list[str]:
    """The machines the complete trials of a trial frame (or a ``trials.csv``) ran on; none
    when it has no ``machine`` column (written before machines were recorded)."""
    if trials is None or "machine" not in trials.columns:
        return []
    done = trials[trials["state"] == "COMPLETE"] if "state" in trials.columns else trials
    return distinct_machines(done["machine"])


_WORDS = {"True": True, "False": False, "None": None}


def typed(text: Any) -> Any:
    """A parameter as its Python value: ``"0.3"`` -> 0.3, ``"8"`` -> 8, ``"None"`` -> None;
    other text stays text. Both readers pass values through here (MLflow stores text)."""
    if not isinstance(text, str):
        if text is None or (isinstance(text, float) and pd.isna(text)):
            return None
        text = str(text)
    if text in _WORDS:
        return _WORDS[text]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if text.strip().lower() not in ("nan", "inf", "-inf", "infinity") else text


def _last_values(history: dict) -> dict[str, float]:
    """Each history's value at its last step (ties: the largest value, as MLflow picks)."""
    out: dict[str, float] = {}
    for name, points in history.items():
        usable = [(int(s), float(v)) for s, v in points if v is not None]
        if usable:
            step = max(s for s, _ in usable)
            out[name] = max(v for s, v in usable if s == step)
    return out


def _numbers(metrics: dict) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def tidy(rows: list[dict]) -> pd.DataFrame:
    """Rows (dicts) as the tidy frame: fixed columns first, params and metrics sorted."""
    # object dtype first: a parameter column of ints with gaps must not turn into floats
    frame = pd.DataFrame(rows, dtype=object)
    for column in TRIAL_COLUMNS:
        if column not in frame:
            frame[column] = pd.Series(dtype=object)
    params = sorted(c for c in frame.columns if c.startswith("params."))
    metrics = sorted(c for c in frame.columns if c.startswith("metrics."))
    frame = frame[TRIAL_COLUMNS + params + metrics]
    frame["trial"] = frame["trial"].astype("int64")
    frame["seed"] = pd.array([typed(s) for s in frame["seed"]], dtype="Int64")
    for column in ("point_key", "sweep", "failure", "error", "run_id", "machine"):
        frame[column] = frame[column].fillna("").astype(str)
    for column in metrics:
        frame[column] = frame[column].astype("float64")
    return frame.sort_values("trial", kind="stable").reset_index(drop=True)


# -- Optuna ------------------------------------------------------------------------------------


def optuna_frame(name: str, trials: list[Any]) -> pd.DataFrame:
    """Tidy rows from Optuna ``FrozenTrial``s (of the sweep's study)."""
    rows = []
    for trial in trials:
        attrs = trial.user_attrs
        params = dict(trial.params) | dict(attrs.get("variables") or {})
        metrics = _numbers(attrs.get("metrics") or {}) | _last_values(attrs.get("history") or {})
        row = {
            "study": name,
            "trial": trial.number,
            "state": trial.state.name,
            "seed": attrs.get(names.ATTR_SEED),
            "point_key": attrs.get(names.ATTR_POINT_KEY, ""),
            "sweep": str(attrs.get("sweep", "")),
            "failure": attrs.get("failure", ""),
            "error": attrs.get("error", ""),
            "run_id": "",
            "source": "optuna",
            "machine": trial_machine(attrs.get("stages") or []),
        }
        row |= {f"params.{k}": typed(str(v)) for k, v in params.items()}
        row |= {f"metrics.{k}": v for k, v in metrics.items()}
        rows.append(row)
    return tidy(rows)


def load_optuna(url: str, name: str | None) -> tuple[str, dict, list[Any]]:
    """``(study name, study user attrs, trials)``; raises LookupError when there is none."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = journal_path(url)
    storage: Any = url
    if journal is not None:
        if not journal.is_file():
            raise LookupError(f"no study in {url} (no such journal file)")
        storage = JournalStorage(
            JournalFileBackend(str(journal), lock_obj=JournalFileOpenLock(str(journal)))
        )
    studies = optuna.get_all_study_names(storage)
    if name is None:
        if not studies:
            raise LookupError(f"no study in {url}")
        name = studies[0]
    elif name not in studies:
        raise LookupError(f"no study {name!r} in {url}")
    study = optuna.load_study(study_name=name, storage=storage)
    return name, dict(study.user_attrs), study.get_trials(deepcopy=False)


# -- MLflow ------------------------------------------------------------------------------------


@contextmanager
def _tracking(uri: str) -> Iterator[None]:
    import mlflow

    # An unreachable server should cost seconds, not minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        if before is not None:
            mlflow.set_tracking_uri(before)


def _check_uri(uri: str) -> None:
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise FileNotFoundError(f"no MLflow database at {uri.removeprefix('sqlite:///')}")


def mlflow_runs(uri: str, name: str) -> pd.DataFrame:
    """``mlflow.search_runs`` over experiment ``name`` (every run, parents included)."""
    import mlflow

    _check_uri(uri)
    with _tracking(uri):
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise LookupError(f"no MLflow experiment {name!r} at {uri}")
        runs = mlflow.search_runs(experiment_ids=[experiment.experiment_id])
    assert isinstance(runs, pd.DataFrame)
    return runs


def mlflow_experiments(uri: str) -> list[str]:
    """Names of the experiments at ``uri`` that hold mats-lab trial runs."""
    import mlflow

    _check_uri(uri)
    with _tracking(uri):
        found: list[str] = []
        for experiment in mlflow.search_experiments():
            runs = mlflow.search_runs(
                experiment_ids=[experiment.experiment_id],
                filter_string=f"tags.`{names.TAG_TRIAL}` != ''",
                max_results=1,
            )
            if len(runs):
                found.append(experiment.name)
    return found


def _last_line(text: Any) -> str:
    lines = [line for line in str(text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def mlflow_frame(name: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Tidy rows from ``mlflow.search_runs`` output: the child runs, one per trial."""
    if f"tags.{names.TAG_TRIAL}" not in runs:
        return tidy([])
    runs = runs[runs[f"tags.{names.TAG_TRIAL}"].notna()]

    def tag(row: Any, key: str) -> str:
        value = row.get(f"tags.{key}")
        return "" if value is None or (isinstance(value, float) and pd.isna(value)) else value

    params = [c for c in runs.columns if c.startswith("params.") and c != "params.seed"]
    metrics = [c for c in runs.columns if c.startswith("metrics.")]
    rows = []
    for row in runs.to_dict("records"):
        record = {
            "study": name,
            "trial": int(row[f"tags.{names.TAG_TRIAL}"]),
            "state": tag(row, "state") or _STATUS_TO_STATE.get(row["status"], row["status"]),
            "seed": row.get("params.seed"),
            "point_key": tag(row, names.ATTR_POINT_KEY),
            "sweep": tag(row, names.TAG_SWEEP),
            "failure": tag(row, "failure"),
            "error": _last_line(tag(row, "log_tail")),
            "run_id": row["run_id"],
            "source": "mlflow",
            "machine": tag(row, "machine"),
            "_synced": tag(row, names.TAG_SYNCED) == "1",
            "_start": row.get("start_time"),
        }
        record |= {c: typed(row[c]) for c in params if not missing(row[c])}
        record |= {c: row[c] for c in metrics if not missing(row[c])}
        rows.append(record)
    if not rows:
        return tidy([])
    frame = pd.DataFrame(rows, dtype=object)
    # A trial logged twice (a write cut short, then synced): keep its complete run.
    frame = frame.sort_values(["trial", "_synced", "_start"], kind="stable")
    frame = frame.drop_duplicates(["trial", "sweep"], keep="last")
    return tidy(frame.drop(columns=["_synced", "_start"]).to_dict("records"))


def missing(value: Any) -> bool:
    """None or NaN."""
    return value is None or (isinstance(value, float) and pd.isna(value))
