"""The Optuna side of a sweep: storage, sampler, pruner, the grid queue, stale trials.

One process asks and tells (STACK.md item 5): grids are enqueued by the orchestrator, every
grid point under a ``point_key`` user attribute, so a restart, a retry or a second worker can
tell which points are done, running, queued or out of retries. Trials left RUNNING by a killed
sweep are failed and re-queued here (ask/tell has no heartbeat thread, item 6); with several
workers on a database server, heartbeats recorded by each worker tell live trials from dead.

Only Optuna and the standard library are imported here.
"""

from __future__ import annotations

import json
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from optuna.trial import FrozenTrial, Trial, TrialState

from mats_lab.lab.space import Point, point_from_params
from mats_lab.protocol import names
from mats_lab.protocol.layout import journal_path
from mats_lab.protocol.spec import StudySpec

__all__ = [
    "POINT_KEY",
    "FINISHED",
    "PointStatus",
    "attempts",
    "create_sampler",
    "create_pruner",
    "enqueue_missing",
    "fail_stale",
    "finished_trial",
    "open_storage",
    "open_study",
    "point_of",
    "record_heartbeat",
]

# The user attributes and failure kinds of the trial contract (mats_lab.protocol.names).
POINT_KEY = names.ATTR_POINT_KEY
SEED = names.ATTR_SEED
FAILURE = names.ATTR_FAILURE
CRASH = names.FAILURE_CRASH
CONFIG = names.FAILURE_CONFIG
INTERRUPTED = names.FAILURE_INTERRUPTED
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def open_storage(url: str, heartbeat_interval: int | None = None) -> BaseStorage:
    """An Optuna storage from a URL: ``journal:///path`` (or a ``.log``/``.jsonl`` path) for
    a journal file, ``sqlite:///...``, ``postgresql://...``, ``mysql://...`` for databases."""
    journal = journal_path(url)
    if journal is not None:
        path = str(journal)
        journal.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    if "://" not in url:
        raise ValueError(f"storage {url!r}: expected journal:///path, sqlite:///path or a DB URL")
    kwargs: dict[str, Any] = {}
    if heartbeat_interval and not url.startswith("sqlite"):
        kwargs = {"heartbeat_interval": heartbeat_interval, "grace_period": 4 * heartbeat_interval}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(3):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is "experimental" since 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, **kwargs)
        except (IntegrityError, ProgrammingError):
            # Workers started together on a fresh database race to create Optuna's tables
            # (``CREATE TYPE ... already exists``): the loser finds them on a second try.
            if attempt == 2:
                raise
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def create_sampler(spec: StudySpec, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The study's sampler with its seed, or ``seed`` (a worker's own: samplers seeded alike on
    several workers would draw the same points); grid studies run enqueued points only."""
    s = spec.sampler.model_copy(update={"seed": seed}) if seed is not None else spec.sampler
    constraints = _constraints_func(spec) if spec.constraints else None
    if s.type in ("grid", "random"):
        return optuna.samplers.RandomSampler(seed=s.seed, **s.args)
    if s.type == "tpe":
        return optuna.samplers.TPESampler(seed=s.seed, constraints_func=constraints, **s.args)
    if s.type == "gp":
        return optuna.samplers.GPSampler(seed=s.seed, constraints_func=constraints, **s.args)
    return optuna.samplers.NSGAIISampler(seed=s.seed, constraints_func=constraints, **s.args)


def _constraints_func(spec: StudySpec) -> Any:
    """Feasible when every value <= 0 (Optuna's convention), from the trial's metrics attr."""
    bounds = [(c.metric, c.max, c.min) for c in spec.constraints]

    def constraints(trial: FrozenTrial) -> list[float]:
        metrics = trial.user_attrs.get("metrics", {})
        out = []
        for metric, high, low in bounds:
            value = metrics.get(metric)
            if value is None:
                out.append(1.0)  # unmeasured: infeasible
                continue
            if high is not None:
                out.append(float(value) - high)
            if low is not None:
                out.append(low - float(value))
        return out

    return constraints


def create_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    if p.type == "median":
        return optuna.pruners.MedianPruner(**p.args)
    if p.type == "percentile":
        return optuna.pruners.PercentilePruner(**({"percentile": 50.0} | p.args))
    if p.type == "hyperband":
        return optuna.pruners.HyperbandPruner(**p.args)
    if p.type == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**p.args)
    return optuna.pruners.NopPruner()


def open_study(spec: StudySpec, storage: BaseStorage, fresh: bool = False) -> optuna.Study:
    """Create the study, or load it (resume); ``fresh`` deletes a stored one first."""
    if fresh:
        try:
            optuna.delete_study(study_name=spec.name, storage=storage)
        except KeyError:
            pass
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        directions=[o.direction for o in spec.objectives],
        sampler=create_sampler(spec),
        pruner=create_pruner(spec),
        load_if_exists=True,
    )
    stored = [d.name.lower() for d in study.directions]
    wanted = [o.direction for o in spec.objectives]
    if stored != wanted:
        raise ValueError(
            f"study {spec.name!r} exists with directions {stored}, the file asks {wanted}; "
            "use --fresh to start over or rename the study"
        )
    study.set_user_attr(
        "study_spec", json.loads(spec.model_dump_json(by_alias=True, exclude_none=True))
    )
    sampler = {"type": spec.sampler.type, "seed": spec.sampler.seed, "args": spec.sampler.args}
    study.set_user_attr("sampler", sampler | {"optuna": optuna.__version__})
    return study


def point_of(spec: StudySpec, trial: FrozenTrial) -> Point:
    """The point a stored trial ran (params + seed user attr)."""
    return point_from_params(spec, dict(trial.params), int(trial.user_attrs.get(SEED, 0)))


def attempts(study: optuna.Study) -> dict[str, Counter]:
    """``point_key -> Counter(state name)`` over every stored trial."""
    out: dict[str, Counter] = {}
    for trial in study.get_trials(deepcopy=False):
        key = trial.user_attrs.get(POINT_KEY)
        if key:
            out.setdefault(key, Counter())[trial.state.name] += 1
            failure = trial.user_attrs.get(FAILURE)
            if trial.state == TrialState.FAIL and failure in (CRASH, CONFIG):
                out[key][failure.upper()] += 1
    return out


class PointStatus:
    """What the storage says about each grid point."""

    def __init__(self, study: optuna.Study, retries: int) -> None:
        self.counts = attempts(study)
        self.retries = retries

    def done(self, key: str) -> bool:
        c = self.counts.get(key, Counter())
        return bool(c["COMPLETE"] or c["PRUNED"])

    def active(self, key: str) -> bool:
        c = self.counts.get(key, Counter())
        return bool(c["WAITING"] or c["RUNNING"])

    def exhausted(self, key: str) -> bool:
        """Crashed more than ``retries`` times (interrupted runs do not count)."""
        counts = self.counts.get(key, Counter())
        return counts["CRASH"] > self.retries or counts["CONFIG"] > 0


def enqueue_missing(study: optuna.Study, spec: StudySpec, points: list[Point]) -> int:
    """Queue every point that is not done, not queued or running, and has retries left."""
    with _queue_lock(study):
        status = PointStatus(study, spec.retries)
        added = 0
        for point in points:
            if status.done(point.key) or status.active(point.key) or status.exhausted(point.key):
                continue
            study.enqueue_trial(
                dict(point.params), user_attrs={POINT_KEY: point.key, SEED: point.seed}
            )
            added += 1
    return added


@contextmanager
def _queue_lock(study: optuna.Study) -> Iterator[None]:
    """Workers sharing a PostgreSQL storage queue points one at a time (an advisory lock per
    study): two workers reading the study at once would otherwise both queue a missing point,
    and it would run twice. Other storages have one asker (the study folder's lock)."""
    storage, _ = _internals(study)
    backend = getattr(storage, "_backend", storage)  # RDB: inside Optuna's _CachedStorage
    engine = getattr(backend, "engine", None)
    if engine is None or engine.dialect.name != "postgresql":
        yield
        return
    import sqlalchemy

    key = zlib.crc32(f"mats-lab queue {study.study_name}".encode())
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})


def fail_stale(study: optuna.Study, heartbeats: bool) -> list[int]:
    """Fail the trials a stopped sweep left RUNNING; returns their numbers.

    With ``heartbeats`` (a database storage shared by workers) only trials whose worker stopped
    beating are failed; otherwise the caller holds the study's lock and every RUNNING trial is
    stale.
    """
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not heartbeats:
        for trial in running:
            storage, trial_id = _internals(study, trial)
            storage.set_trial_user_attr(trial_id, FAILURE, INTERRUPTED)
            study.tell(trial.number, state=TrialState.FAIL)
        return sorted(t.number for t in running)
    # Optuna's own fail_stale_trials, with the failure kind written while the trial still runs
    # (a finished trial takes no attribute); workers racing for one trial: one wins, the others
    # find it finished.
    storage, _ = _internals(study)
    stale_ids = getattr(storage, "_get_stale_trial_ids", None)
    if stale_ids is None or storage.get_heartbeat_interval() is None:  # type: ignore[attr-defined]
        return []
    ids = set(stale_ids(study._study_id))
    failed = []
    for trial in running:
        _, trial_id = _internals(study, trial)
        if trial_id not in ids:
            continue
        try:
            storage.set_trial_user_attr(trial_id, FAILURE, INTERRUPTED)
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                failed.append(trial.number)
        except (UpdateFinishedTrialError, RuntimeError):
            continue  # another worker failed it first
    return sorted(failed)


def claim_waiting(study: optuna.Study, number: int) -> Trial | None:
    """Start queued trial ``number`` now, as ``Study.ask`` starts the oldest queued one (None
    when it is no longer queued). Used by a sweep that owns its study to resume a re-queued
    trial that has a checkpoint before newer points."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if trial.number == number:
            storage, trial_id = _internals(study, trial)
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return Trial(study, trial_id)
            return None
    return None


def finished_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """The stored trial ``number`` (after ``tell``), through the public ``get_trials``."""
    for trial in study.get_trials(deepcopy=False, states=FINISHED + (TrialState.FAIL,)):
        if trial.number == number:
            return trial
    raise KeyError(f"study {study.study_name!r} has no finished trial {number}")


def record_heartbeat(study: optuna.Study, trial: Trial | FrozenTrial) -> None:
    """Record a heartbeat for a running trial (database storages only; no-op elsewhere)."""
    storage, trial_id = _internals(study, trial)
    record = getattr(storage, "record_heartbeat", None)
    if record is not None:
        record(trial_id)


def _internals(
    study: optuna.Study, trial: Trial | FrozenTrial | None = None
) -> tuple[BaseStorage, int]:
    """The storage behind ``study`` and the storage id of ``trial`` (-1 without one).

    The lab's only use of Optuna's private API, for five things Optuna has no public call for:
    a heartbeat of a trial run through ask/tell (Optuna beats only inside ``Study.optimize``,
    STACK.md item 6); a user attribute on a stored trial no live ``Trial`` object stands for
    (stale trials of a stopped sweep); the stale trials of a study with their failure kind
    written before they are failed (:func:`fail_stale`: ``_get_stale_trial_ids`` and
    ``_study_id``, as ``optuna.storages.fail_stale_trials`` does); and the database engine that
    PostgreSQL's advisory lock needs (:func:`enqueue_missing`); starting one particular queued
    trial (:func:`claim_waiting`; ``Study.ask`` always takes the oldest).
    """
    storage: BaseStorage = study._storage
    return storage, (trial._trial_id if trial is not None else -1)
