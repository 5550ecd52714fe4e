"""Collect: a study's trials from its stores into one tidy DataFrame (:mod:`.stores`), with
what the report needs besides: the study's variables and stages, notes on where the numbers
came from, each trial's stage work dirs and per-epoch history.

:func:`collect` prefers MLflow and says so; it adds from the Optuna storage what MLflow cannot
know (running and queued trials, trials MLflow missed while it was down) and leaves out MLflow
runs of an earlier study of the same name (``--fresh`` restarts trial numbers; the sweep id
tells the runs apart). When MLflow is unavailable the frame comes from Optuna alone, and a note
says so. This module and :mod:`.stores` are the report's only readers of stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mats_lab.report.sources import StudySource
from mats_lab.report.stores import (
    TRIAL_COLUMNS,
    load_optuna,
    missing,
    mlflow_experiments,
    mlflow_frame,
    mlflow_runs,
    optuna_frame,
    tidy,
)
from mats_lab.report.trial_tables import TrialTableError

__all__ = [
    "TRIAL_COLUMNS",
    "StudyData",
    "collect",
    "collect_tables",
    "curves",
    "mlflow_experiments",
    "mlflow_frame",
    "optuna_frame",
]


@dataclass
class StudyData:
    """What the report knows about one study."""

    name: str
    trials: pd.DataFrame
    source: str  # "mlflow" or "optuna": where the metrics come from
    variables: list[str] = field(default_factory=list)  # the study's own variables, in order
    bundles: list[str] = field(default_factory=list)  # variables whose values are bundle labels
    stage_names: list[str] = field(default_factory=list)
    description: str = ""
    notes: list[str] = field(default_factory=list)
    tracking_uri: str | None = None
    storage_url: str | None = None
    study_file: Path | None = None
    folder: Path | None = None
    root: Path | None = None
    baseline: str | None = None  # the study file's ``baseline`` (``--baseline`` overrides it)
    stages: dict[int, list[dict]] = field(default_factory=dict)  # trial -> stage records
    histories: dict[int, dict] = field(default_factory=dict)  # trial -> per-epoch history
    tables: list[Path] = field(default_factory=list)  # source "tables": the trials.csv files

    @property
    def param_columns(self) -> list[str]:
        return [c for c in self.trials.columns if c.startswith("params.")]

    @property
    def metric_columns(self) -> list[str]:
        return [c for c in self.trials.columns if c.startswith("metrics.")]


# -- both --------------------------------------------------------------------------------------


def merge(from_mlflow: pd.DataFrame, from_optuna: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """MLflow's rows for the Optuna study's trials, plus the trials MLflow lacks."""
    known = {(t, s) for t, s in zip(from_optuna["trial"], from_optuna["sweep"], strict=True)}
    numbers = set(from_optuna["trial"])
    same = [
        (t, s) in known or (not s and t in numbers)
        for t, s in zip(from_mlflow["trial"], from_mlflow["sweep"], strict=True)
    ]
    stale = len(same) - sum(same)
    if stale:
        notes.append(f"{stale} MLflow runs of an earlier study of this name (--fresh) left out")
    kept = from_mlflow[same]
    logged = set(kept["trial"])
    extra = from_optuna[~from_optuna["trial"].isin(logged)]
    finished = extra[extra["state"].isin(("COMPLETE", "PRUNED", "FAIL"))]
    missed = finished[finished["failure"] != "interrupted"]
    if len(missed):
        notes.append(
            f"{len(missed)} finished trials are not in MLflow (run `mats-lab sync`): "
            "taken from the Optuna storage"
        )
    errors = dict(zip(from_optuna["trial"], from_optuna["error"], strict=True))
    kept = kept.assign(
        error=[errors.get(t) or e for t, e in zip(kept.trial, kept.error, strict=True)]
    )
    return tidy(pd.concat([kept, extra], ignore_index=True).to_dict("records"))


def _no_file(url: str | None) -> bool:
    """True for a local store (journal or sqlite file) that does not exist, or no store."""
    if not url:
        return True
    for prefix in ("journal://", "sqlite:///"):
        if url.startswith(prefix):
            return not Path(url.removeprefix(prefix)).is_file()
    return False


def _spec_info(spec: dict) -> tuple[list[str], list[str], list[str], str]:
    space = spec.get("space") or {}
    variables = list(space)
    bundles = [
        n
        for n, v in space.items()
        if any(isinstance(x, dict) for x in v.get("grid") or v.get("choices") or [])
    ]
    stages = [s.get("name", "") for s in spec.get("stages") or []]
    return variables, bundles, stages, str(spec.get("description") or "")


def collect(
    source: StudySource,
    *,
    tracking_uri: str | None = None,
    storage_url: str | None = None,
    use_mlflow: bool = True,
) -> StudyData:
    """One study's trials, from MLflow when reachable, else from the Optuna storage."""
    notes: list[str] = []
    name = source.name
    storage_url = storage_url or source.storage_url
    tracking_uri = tracking_uri or source.tracking_uri
    spec: dict = {}
    trials: list[Any] = []
    from_optuna: pd.DataFrame | None = None
    if storage_url:
        journal = storage_url.removeprefix("journal://")
        if not storage_url.startswith("journal://") or Path(journal).is_file():
            try:
                name, attrs, trials = load_optuna(storage_url, name)
                spec = attrs.get("study_spec") or {}
                from_optuna = optuna_frame(name, trials)
            except Exception as exc:  # noqa: BLE001 - any failure: report from MLflow alone
                notes.append(
                    f"Optuna storage {storage_url} unreadable ({type(exc).__name__}: {exc})"
                )
    if name is None:
        raise LookupError(f"{source.label}: no study found in its stores")
    if source.study_file is not None and not spec:
        from mats_lab.protocol.spec import load_study

        spec = load_study(source.study_file).model_dump(by_alias=True, exclude_none=True)
    if from_optuna is None and _no_file(tracking_uri) and _no_file(storage_url):
        run = f"`mats-lab sweep {source.study_file}`" if source.study_file else "its sweep"
        raise LookupError(f"study {name!r} has no results yet: run {run} first")
    frame: pd.DataFrame | None = None
    used = "optuna"
    if use_mlflow and tracking_uri:
        try:
            frame = mlflow_frame(name, mlflow_runs(tracking_uri, name))
            used = "mlflow"
        except Exception as exc:  # noqa: BLE001 - MLflow down: the Optuna storage has it all
            reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
            notes.append(f"MLflow unavailable ({reason})")
    if frame is not None and from_optuna is not None:
        frame = merge(frame, from_optuna, notes)
    elif frame is None:
        if from_optuna is None:
            raise LookupError(
                f"study {name!r}: neither its MLflow nor its Optuna store is readable"
            )
        frame = from_optuna
        if use_mlflow and tracking_uri:
            notes.append("tables built from the Optuna storage alone")
    variables, bundles, stage_names, description = _spec_info(spec)
    if not variables:  # no study file: every parameter is a variable
        variables = [c.removeprefix("params.") for c in frame.columns if c.startswith("params.")]
    return StudyData(
        name=name,
        trials=frame,
        source=used,
        variables=variables,
        bundles=bundles,
        stage_names=stage_names,
        description=description,
        notes=notes,
        tracking_uri=tracking_uri,
        storage_url=storage_url,
        study_file=source.study_file,
        baseline=source.baseline or spec.get("baseline"),  # the file as it is now, else as run
        folder=source.folder,
        root=source.root,
        stages={t.number: list(t.user_attrs.get("stages") or []) for t in trials},
        histories={t.number: dict(t.user_attrs.get("history") or {}) for t in trials},
    )


def _grid_values(spec: dict, bundles: list[str]) -> dict[str, list[Any]]:
    """Each grid variable's values (bundles, whose values are labels, left out)."""
    out: dict[str, list[Any]] = {}
    for name, entry in (spec.get("space") or {}).items():
        grid = entry.get("grid") if isinstance(entry, dict) else None
        if grid is not None and name not in bundles:
            out[name] = list(grid)
    return out


def collect_tables(source: StudySource, paths: list[Path]) -> StudyData:
    """A study's trials from trial tables (``trials.csv`` of earlier reports), pooled; the
    study file gives the name, variables, stages and baseline (:mod:`.trial_tables`)."""
    from mats_lab.protocol.spec import load_study
    from mats_lab.report.trial_tables import pool, read_table, table_path

    if source.study_file is None:
        raise TrialTableError(
            f"{source.label}: --trials needs the study file (it names the variables and seeds)"
        )
    spec = load_study(source.study_file).model_dump(by_alias=True, exclude_none=True)
    variables, bundles, stage_names, description = _spec_info(spec)
    tables = [(table_path(p), read_table(p)) for p in paths]
    seeds = spec.get("seeds")
    frame = pool(tables, variables, seeds=list(seeds) if seeds else None,
                 values=_grid_values(spec, bundles))  # fmt: skip
    return StudyData(
        name=str(spec.get("name") or source.label),
        trials=frame,
        source="tables",
        variables=variables,
        bundles=bundles,
        stage_names=stage_names,
        description=description,
        study_file=source.study_file,
        baseline=source.baseline or spec.get("baseline"),
        folder=source.folder,
        root=source.root,
        tables=[p for p, _ in tables],
    )


def curves(data: StudyData, trials: list[int], metrics: list[str]) -> pd.DataFrame:
    """Per-epoch values ``(trial, metric, step, value)`` of some trials: the ``history`` the
    sweep stored with each trial in Optuna (what it logged to MLflow as metric history), or,
    for a trial known to MLflow alone, MLflow's metric history."""
    rows: list[tuple[int, str, int, float]] = []
    frame = data.trials.set_index("trial")
    client: Any = None
    for trial in trials:
        history = data.histories.get(trial)
        if history is not None:
            for metric in metrics:
                for step, value in history.get(metric, []):
                    if value is not None:
                        rows.append((trial, metric, int(step), float(value)))
            continue
        run_id = frame.at[trial, "run_id"] if trial in frame.index else ""
        if not run_id or not data.tracking_uri:
            continue
        if client is None:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=data.tracking_uri)
        for metric in metrics:
            column = f"metrics.{metric}"
            if column in frame.columns and not missing(frame.at[trial, column]):
                for m in client.get_metric_history(run_id, metric):
                    rows.append((trial, metric, int(m.step), float(m.value)))
    return pd.DataFrame(rows, columns=["trial", "metric", "step", "value"])
