"""The study driver: asks Optuna for trials, walks each through its stages, tells the outcome.

Life of a trial here: it is asked (a queued grid point, a retry, a seed repeat, or a sampled
point) and planned into stages (:func:`mats_lab.lab.space.plan_stages`); :meth:`advance` gives
its next stage to run, reusing every stage whose work dir already holds a result; validation
metrics of its last stage go to the pruner as they appear (:meth:`report`); when every stage is
done its metrics are assembled and the objectives told, or, when a stage crashed, the trial is
failed with the stage's log tail and the point re-queued while retries are left. Every told
trial is logged to MLflow. Trials left RUNNING by a stopped sweep are failed and re-queued when
the study opens (and, with several workers on a database, when their heartbeats stop).

The driver runs no process and knows no device: the sweep (:mod:`mats_lab.lab.sweep`) starts
the stages it hands out on the device pool and brings back their exit codes.

Only Optuna (through :mod:`mats_lab.lab.study`), the lab's modules and the protocol are used.

One file although it passes 400 lines: a trial's life through Optuna (ask, advance, tell,
retry, recover) is one state machine over the same records; split, its states would be
read and written from several modules.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import Trial, TrialState

from mats_lab.lab import study as st
from mats_lab.lab.launch import log_tail
from mats_lab.lab.progress import ProgressReader, read_progress
from mats_lab.lab.records import trial_record
from mats_lab.lab.space import Point, StagePlan, grid_points, plan_stages, suggest_point
from mats_lab.lab.stagelocks import StageLocks
from mats_lab.lab.tracking import Tracker
from mats_lab.protocol.exits import CONFIG_ERROR
from mats_lab.protocol.layout import StageFiles, adopt_stage, relocated, stage_dir
from mats_lab.protocol.records import StageResult, read_result
from mats_lab.protocol.spec import StudySpec

__all__ = ["StudyDriver", "TrialRun", "trial_metrics"]


@dataclass
class TrialRun:
    """A trial this sweep asked for and has not told yet."""

    trial: Trial
    point: Point
    plans: list[StagePlan]
    order: int = 0  # ask order: the scheduling priority (older trials first)
    next_stage: int = 0
    results: dict[str, StageResult] = field(default_factory=dict)  # stage name -> result
    stage_meta: list[dict] = field(default_factory=list)
    history: dict[str, list[list[float]]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    skips: int = 0  # times a later stage started ahead of its next one (mats_lab.lab.packing)
    told: bool = False  # finished, failed or pruned: nothing more to run

    @property
    def number(self) -> int:
        return self.trial.number

    def is_last(self, plan: StagePlan) -> bool:
        return plan is self.plans[-1]


class StudyDriver:
    """Optuna's side of a sweep: ask, advance, report, prune, tell, retry, recover."""

    def __init__(
        self,
        spec: StudySpec,
        folder: Path,
        root: Path,
        study: optuna.Study,
        tracker: Tracker,
        say: Callable[[str], None],
        *,
        commit: str,
        sweep_id: str,
        heartbeats: bool,
        max_trials: int | None = None,
        deadline: float | None = None,
        stages: Path | None = None,
    ) -> None:
        self.spec = spec
        self.folder = folder
        self.stages = stages if stages is not None else folder  # work dirs: a shared store?
        self.locks = StageLocks(self.stages)
        self.root = root
        self.study = study
        self.tracker = tracker
        self.say = say
        self.commit = commit
        self.sweep_id = sweep_id
        self.heartbeats = heartbeats
        self.max_trials = max_trials
        self.deadline = deadline
        self.started_trials = 0
        self.finished: list[tuple[int, str]] = []  # (trial number, state name)
        self.stop_reason = ""
        grid = grid_points(spec) if spec.sampler.type == "grid" else []
        if spec.budget.trials is not None and grid:
            grid = grid[: spec.budget.trials]
        self.grid = grid

    # -- asking -------------------------------------------------------------------------------
    def queue_grid(self) -> None:
        if self.grid:
            added = st.enqueue_missing(self.study, self.spec, self.grid)
            self.say(f"study {self.spec.name}: {len(self.grid)} grid trials, {added} queued now")

    def budget_left(self) -> bool:
        if self.deadline is not None and time.time() >= self.deadline:
            self.stop_reason = self.stop_reason or "time budget"
            return False
        if self.max_trials is not None and self.started_trials >= self.max_trials:
            self.stop_reason = self.stop_reason or "--max-trials"
            return False
        if self.spec.sampler.type != "grid" and self.spec.budget.trials is not None:
            counted = self.study.get_trials(
                deepcopy=False,
                states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING),
            )
            if len(counted) >= self.spec.budget.trials:
                return False
        return True

    def more_work(self, live: list[TrialRun]) -> bool:
        """Whether asking can still produce a trial (grid: queued points remain)."""
        if not self.budget_left():
            return False
        if not self.grid:
            return True
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not waiting:
            st.enqueue_missing(self.study, self.spec, self.grid)  # retries of crashes
            waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not waiting and self.heartbeats:
            running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if running:  # other workers still at it: wait for a crash to re-queue
                time.sleep(2.0)
                self.recover_stale(live)
                return True
        return bool(waiting)

    def ask(self) -> TrialRun | None:
        """A new trial, planned; None when none can be asked now."""
        if self.grid and not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return None
        resumable = self._resumable_waiting() if self.grid and not self.heartbeats else None
        claimed = st.claim_waiting(self.study, resumable) if resumable is not None else None
        try:
            with warnings.catch_warnings():  # the lab beats itself (ask/tell, STACK.md 6)
                warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                trial = claimed if claimed is not None else self.study.ask()
        except RuntimeError:
            return None
        if self.grid and st.POINT_KEY not in trial.user_attrs:
            # The queue emptied between the check and the ask (another worker): give it back.
            self.study.tell(trial, state=TrialState.FAIL)
            return None
        seed = trial.user_attrs.get(st.SEED)
        # Queued trials (grid points, retries, seed repeats) return their fixed params here.
        point = suggest_point(self.spec, trial, self.spec.seeds[0] if seed is None else seed)
        if seed is None:  # a freshly sampled trial: its first seed now, the others queued
            trial.set_user_attr(st.POINT_KEY, point.key)
            trial.set_user_attr(st.SEED, point.seed)
            for other in self.spec.seeds[1:]:
                twin = Point(point.params, other, point.values)
                self.study.enqueue_trial(
                    dict(point.params), user_attrs={st.POINT_KEY: twin.key, st.SEED: other}
                )
        trial.set_user_attr("variables", dict(point.values))
        trial.set_user_attr("sweep", self.sweep_id)
        self.started_trials += 1
        order = self.started_trials
        try:
            plans = self._plan(point)
        except KeyError as exc:
            self.fail(TrialRun(trial, point, []), f"cannot plan the trial: {exc}", st.CONFIG)
            return None
        if self.heartbeats:  # at once: a trial that never beat is never found stale
            st.record_heartbeat(self.study, trial)
        return TrialRun(trial, point, plans, order=order)

    def _plan(self, point: Point) -> list[StagePlan]:
        """:func:`plan_stages` (KeyError as it raises), first adopting any of the stages kept
        under its key from before keys were portable (not while another worker runs it)."""
        plans = plan_stages(self.spec, point, self.root, self.spec.command)
        for plan in plans:
            old = plan.legacy_key
            if not old or not stage_dir(self.stages, old).is_dir():  # the common case: a stat
                continue
            if not self.locks.taken_elsewhere(old) and adopt_stage(self.stages, old, plan.key):
                self.say(f"stage {plan.key}: adopted from {old} (the old key)")
        return plans

    def plans_of(self, point: Point) -> list[StagePlan]:
        """The stages of ``point``'s trial (none when it cannot be planned)."""
        try:
            return self._plan(point)
        except KeyError:
            return []

    def _resumable_waiting(self) -> int | None:
        """The first queued trial behind the queue's head whose point has a stage cut short
        with a checkpoint (a trial a killed sweep re-queued): it goes first, so a resumed sweep
        finishes interrupted work before it starts new points (``--max-trials 1`` resumes it)."""
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        points = {p.key: p for p in self.grid}
        for trial in sorted(waiting, key=lambda t: t.number)[1:]:
            point = points.get(str(trial.user_attrs.get(st.POINT_KEY, "")))
            if point is None:
                continue
            try:
                plans = self._plan(point)
            except KeyError:
                continue
            for plan in plans:
                work_dir = stage_dir(self.stages, plan.key)
                if read_result(work_dir) is None and StageFiles(work_dir).last_checkpoint.is_file():
                    return trial.number
        return None

    # -- walking a trial's stages -------------------------------------------------------------
    def advance(self, run: TrialRun, busy: set[str]) -> StagePlan | None:
        """The trial's next stage to run, skipping reusable ones; None when it is blocked (the
        same stage runs for another trial: wait for it) or done (then it is told here)."""
        while run.next_stage < len(run.plans):
            plan = run.plans[run.next_stage]
            result = read_result(stage_dir(self.stages, plan.key))
            if result is not None:
                self._record_history(run, plan)  # its curves, as if this trial had trained it
                self._take_result(run, plan, result, reused=True)
                run.next_stage += 1
                continue
            if plan.key in busy or self.locks.taken_elsewhere(plan.key):
                return None  # runs here for another trial, or on another worker: wait
            return plan
        self._finish(run)
        return None

    def next_queued_needs(self, busy: set[str]) -> int | None:
        """Devices the trial :meth:`ask` would return next must get to start now: 0 when every
        stage of it is done (it is told at once), None when its next stage runs elsewhere (here
        for another trial, or on another worker). Sampled studies: their first stage's devices."""
        queued = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not queued:
            return None if self.grid else self.spec.stages[0].devices
        head = min(queued, key=lambda t: t.number)
        try:
            point = st.point_of(self.spec, head)
            plans = self._plan(point)
        except KeyError:
            return 0  # asked, it fails as a config error at once
        for plan in plans:
            if read_result(stage_dir(self.stages, plan.key)) is not None:
                continue
            if plan.key in busy or self.locks.taken_elsewhere(plan.key):
                return None
            return plan.devices
        return 0

    def hand_back(self, run: TrialRun) -> None:
        """Give back a trial this worker cannot start now (FAIL, marked interrupted, and its
        point queued again) so that a worker with free devices takes it."""
        if not self._writable(run):
            return
        run.trial.set_user_attr(st.FAILURE, st.INTERRUPTED)
        run.trial.set_user_attr("handed_back", True)
        self.study.tell(run.trial, state=TrialState.FAIL)
        run.told = True
        self._requeue([run.point])

    def stage_ended(self, run: TrialRun, plan: StagePlan, code: int) -> None:
        """Take a stage's exit: its result, or the trial's failure (with the log tail)."""
        work_dir = stage_dir(self.stages, plan.key)
        result = read_result(work_dir)
        self._record_history(run, plan)
        if code != 0 or result is None:
            kind = st.CONFIG if code == CONFIG_ERROR else st.CRASH
            tail = log_tail(StageFiles(work_dir).log)
            run.stage_meta.append(self._meta(plan, None, reused=False))
            self.fail(run, f"stage {plan.name} exited with {code}", kind, tail)
            return
        self._take_result(run, plan, result, reused=bool(result.reused_from))
        run.next_stage += 1

    def report(self, run: TrialRun, plan: StagePlan, reader: ProgressReader, sent: int) -> int:
        """Report the last stage's new validations to the pruner; returns how many are sent."""
        metric = self.spec.objectives[0].metric
        if self.spec.pruner.type == "none" or not run.is_last(plan):
            return sent
        if not metric.startswith("val/"):
            return sent
        name = metric.removeprefix("val/")
        epochs = sorted(e for e, m in reader.val.items() if name in m)
        for epoch in epochs[sent:]:
            run.trial.report(float(reader.val[epoch][name]), step=epoch)
            sent += 1
        return sent

    def should_prune(self, run: TrialRun, sent: int) -> bool:
        return sent > 0 and run.trial.should_prune()

    def pruned(self, run: TrialRun, plan: StagePlan) -> None:
        """The stage of a pruned trial was stopped: record it and tell PRUNED."""
        self._record_history(run, plan)
        run.stage_meta.append(self._meta(plan, None, reused=False))
        self._tell(run, TrialState.PRUNED, None)

    def _take_result(
        self, run: TrialRun, plan: StagePlan, result: StageResult, reused: bool
    ) -> None:
        # its checkpoint where the stage is now (a store mounted elsewhere, an adopted stage)
        moved = relocated(result.checkpoint, stage_dir(self.stages, plan.key))
        run.results[plan.name] = result.model_copy(update={"checkpoint": moved})
        run.stage_meta.append(self._meta(plan, result, reused))
        if reused:
            self.say(f"trial {run.number}: stage {plan.name} reused ({plan.key})")

    def _meta(self, plan: StagePlan, result: StageResult | None, reused: bool) -> dict:
        return {
            "name": plan.name,
            "key": plan.key,
            "work_dir": str(stage_dir(self.stages, plan.key)),
            "config_hash": result.config_hash if result else None,
            "reused": reused,
            "resumed_from": result.resumed_from if result else None,
            "machine": result.machine if result else None,
        }

    def _record_history(self, run: TrialRun, plan: StagePlan) -> None:
        full = read_progress(StageFiles(stage_dir(self.stages, plan.key)).progress)  # all runs
        prefix = "" if run.is_last(plan) else f"{plan.name}/"
        for epoch, metrics in sorted(full.val.items()):
            for name, value in metrics.items():
                if isinstance(value, (int, float)):
                    run.history.setdefault(f"{prefix}val/{name}", []).append([epoch, value])
        for epoch, loss in full.epoch_losses().items():
            run.history.setdefault(f"{plan.name}/train/loss", []).append([epoch, loss])
        for name, per_epoch in full.epoch_scalars().items():
            for epoch, value in per_epoch.items():
                run.history.setdefault(f"{plan.name}/train/{name}", []).append([epoch, value])

    # -- telling ------------------------------------------------------------------------------
    def _finish(self, run: TrialRun) -> None:
        metrics = trial_metrics(run)
        missing = [o.metric for o in self.spec.objectives if o.metric not in metrics]
        if missing:
            produced = ", ".join(sorted(metrics))
            self.fail(
                run,
                f"objective {', '.join(missing)} was not produced (produced: {produced})",
                st.CONFIG,
            )
            return
        values = [metrics[o.metric] for o in self.spec.objectives]
        self._tell(run, TrialState.COMPLETE, values, metrics)

    def fail(self, run: TrialRun, why: str, kind: str, tail: str = "") -> None:
        """Tell FAIL (``kind``: crash / config) and re-queue a crashed point with retries left."""
        if not self._writable(run):
            return
        trial = run.trial
        trial.set_user_attr(st.FAILURE, kind)
        trial.set_user_attr("error", why)
        if tail:
            trial.set_user_attr("log_tail", tail[-8000:])
        self.say(f"trial {trial.number} FAILED ({kind}): {why}")
        if tail:
            self.say("  | " + "\n  | ".join(tail.splitlines()[-15:]))
        self._tell(run, TrialState.FAIL, None, trial_metrics(run))
        if kind == st.CRASH and self.grid:
            st.enqueue_missing(self.study, self.spec, self.grid)
        elif kind == st.CRASH:
            status = st.PointStatus(self.study, self.spec.retries)
            if not status.exhausted(run.point.key):
                self.study.enqueue_trial(
                    dict(run.point.params),
                    user_attrs={st.POINT_KEY: run.point.key, st.SEED: run.point.seed},
                )

    def _tell(
        self,
        run: TrialRun,
        state: TrialState,
        values: list[float] | None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        if not self._writable(run):
            return
        trial = run.trial
        trial.set_user_attr("metrics", metrics if metrics is not None else trial_metrics(run))
        trial.set_user_attr("history", run.history)
        trial.set_user_attr("stages", run.stage_meta)
        trial.set_user_attr("wall_time_s", time.time() - run.started)
        if state == TrialState.COMPLETE:
            self.study.tell(trial, values)
        else:
            self.study.tell(trial, state=state)
        run.told = True
        self.finished.append((trial.number, state.name))
        if state == TrialState.COMPLETE:
            shown = ", ".join(
                f"{o.metric}={v:.4g}"
                for o, v in zip(self.spec.objectives, values or [], strict=False)
            )
            self.say(f"trial {trial.number} COMPLETE ({run.point.describe()}): {shown}")
        elif state == TrialState.PRUNED:
            self.say(f"trial {trial.number} PRUNED ({run.point.describe()})")
        record = trial_record(st.finished_trial(self.study, trial.number), self.commit)
        self.tracker.log_trial(record)

    # -- liveness -----------------------------------------------------------------------------
    def beat(self, runs: list[TrialRun]) -> None:
        """Heartbeats for the trials whose stages run (database storages only)."""
        for run in runs:
            st.record_heartbeat(self.study, run.trial)

    def recover_stale(self, live: list[TrialRun]) -> list[int]:
        """Beat for our own trials, then fail and re-queue other workers' dead ones (whatever
        they were doing: running a stage, or waiting); returns their numbers."""
        self.beat(live)
        stale = st.fail_stale(self.study, heartbeats=True)
        if stale:
            trials = self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            points = [st.point_of(self.spec, t) for t in trials if t.number in stale]
            self._requeue(points)
            self.say(f"failed and re-queued trials whose worker stopped beating: {stale}")
        return stale

    def _requeue(self, points: list[Point]) -> None:
        """Queue ``points`` again (grid: every missing point; sampled: these, once each)."""
        if self.grid:
            st.enqueue_missing(self.study, self.spec, self.grid)
            return
        status = st.PointStatus(self.study, self.spec.retries)
        for point in points:
            if not (status.done(point.key) or status.active(point.key)):
                self.study.enqueue_trial(
                    dict(point.params), user_attrs={st.POINT_KEY: point.key, st.SEED: point.seed}
                )

    def _writable(self, run: TrialRun) -> bool:
        """False (and the run marked told) when another worker already finished the trial:
        its heartbeat lapsed and it was failed and re-queued there."""
        if not self.heartbeats:
            return True
        stored = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if any(t.number == run.number for t in stored):
            return True
        self.say(f"trial {run.number} was failed by another worker (heartbeat lapsed); dropped")
        run.told = True
        return False

    def interrupt(self, run: TrialRun, plan: StagePlan | None = None) -> None:
        """A trial cut short by a stopping sweep: FAIL, marked interrupted (so not a crash)."""
        if not self._writable(run):
            return
        run.trial.set_user_attr(st.FAILURE, st.INTERRUPTED)
        if plan is not None:
            self._record_history(run, plan)
            self.finished.append((run.number, "INTERRUPTED"))
            run.trial.set_user_attr("history", run.history)
            run.trial.set_user_attr("stages", run.stage_meta)
        self.study.tell(run.trial, state=TrialState.FAIL)
        run.told = True
        if plan is not None:  # it ran: its MLflow run says FAILED (not left without a record)
            record = trial_record(st.finished_trial(self.study, run.number), self.commit)
            self.tracker.log_trial(record)

    def close(self) -> None:
        """Give interrupted grid points back to the queue."""
        if self.grid:
            st.enqueue_missing(self.study, self.spec, self.grid)


def trial_metrics(run: TrialRun) -> dict[str, float]:
    """Everything a trial measured, flat: per-stage cost (``stage/key``), the last stage's
    ``val/*``, ``test/*`` and model costs, the peak memory and the summed wall time."""
    metrics: dict[str, float] = {}
    last = run.plans[-1].name if run.plans else ""
    peak = 0.0
    wall = 0.0
    for plan in run.plans:
        result = run.results.get(plan.name)
        cost = result.cost if result is not None else {}
        for key, value in cost.items():
            if isinstance(value, (int, float)):
                metrics[f"{plan.name}/{key}"] = float(value)
        peak = max(peak, float(cost.get("peak_memory_mb") or 0))
        wall += float(cost.get("wall_time_s") or 0)
    final = run.results.get(last) or StageResult()
    for key, value in final.val.items():
        if isinstance(value, (int, float)):
            metrics[f"val/{key}"] = float(value)
    for key, value in final.test.items():
        if isinstance(value, (int, float)):
            metrics[f"test/{key}"] = float(value)
    for key in ("train_gmacs", "test_gmacs", "params_m", "throughput"):
        value = final.cost.get(key)
        if isinstance(value, (int, float)):
            metrics[key] = float(value)
    metrics["peak_memory_mb"] = peak
    metrics["wall_time_s"] = wall
    return metrics
