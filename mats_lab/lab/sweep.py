"""The sweep orchestrator: one process owns the study (ask/tell), fills every device slot with
trial stages run as subprocesses, follows them, prunes, retries, and records everything.

Life of a trial: it is asked (a queued grid point, or a sampled one), planned into stages
(:func:`mats_lab.lab.space.plan_stages`); each stage whose work dir already holds a result is
reused, the others run in turn on free slots; its validation metrics are reported to the pruner
as they appear; at the end the objectives are told to Optuna and the trial is logged to MLflow.
A crashed stage fails the trial (with its log tail) and re-queues the point while retries are
left. The stage work dir is keyed by the stage's inputs, so a re-run of a killed trial finds its
checkpoint and resumes.

Only the standard library and the lab's own modules (Optuna, MLflow through them) are used.
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.trial import Trial, TrialState

from mats_lab.lab import study as st
from mats_lab.lab.launch import DEFAULT_COMMAND, Slot, log_tail, make_slots, start_stage
from mats_lab.lab.progress import ProgressReader
from mats_lab.lab.records import trial_record
from mats_lab.lab.space import Point, StagePlan, grid_points, plan_stages, suggest_point
from mats_lab.lab.tracking import Tracker
from mats_lab.protocol.exits import CONFIG_ERROR
from mats_lab.protocol.layout import StageFiles, default_storage, default_tracking, stage_dir
from mats_lab.protocol.provenance import git_commit
from mats_lab.protocol.records import StageResult, StageSpec, read_result
from mats_lab.protocol.spec import StudySpec, parse_duration, study_paths

__all__ = ["Sweep", "SweepOptions"]

HEARTBEAT_EVERY = 5.0  # seconds between heartbeats of running trials (grace period: 120 s)


@dataclass
class SweepOptions:
    devices: list[int] | int | str | None = None  # None: the study's resources.devices
    max_trials: int | None = None  # new trials started by this invocation
    fresh: bool = False
    storage: str | None = None
    tracking_uri: str | None = None
    worker: bool = False  # join a study on a database server (no study-folder lock)
    poll: float = 0.2  # seconds between polls of the running stages
    status_every: float = 10.0  # seconds between progress lines (non-TTY)
    out: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass
class _Trial:
    trial: Trial
    point: Point
    plans: list[StagePlan]
    next_stage: int = 0
    results: dict[str, StageResult] = field(default_factory=dict)  # stage name -> result
    stage_meta: list[dict] = field(default_factory=list)
    history: dict[str, list[list[float]]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)


@dataclass
class _Running:
    owner: _Trial
    plan: StagePlan
    slot: Slot
    proc: subprocess.Popen
    work_dir: Path
    reader: ProgressReader
    started: float = field(default_factory=time.time)
    reports: int = 0


class Sweep:
    """Run a study to its end (or budget) on this machine's slots."""

    def __init__(self, spec: StudySpec, study_file: Path, options: SweepOptions) -> None:
        self.spec = spec
        self.options = options
        self.folder, self.root = study_paths(spec, study_file)
        self.command = list(spec.command) if spec.command else list(DEFAULT_COMMAND)
        self.storage_url = options.storage or spec.storage or default_storage(self.folder)
        self.tracking_uri = (
            options.tracking_uri or spec.tracking_uri or default_tracking(self.folder)
        )
        res = spec.resources
        devices = options.devices if options.devices is not None else res.devices
        self.slots = make_slots(devices, res.trials_per_device, res.cpu_threads)
        self.free: list[Slot] = list(self.slots)
        self.running: dict[int, _Running] = {}  # slot index -> stage
        self.waiting: list[_Trial] = []  # trials whose next stage is ready or blocked
        self.started_trials = 0
        self.finished: list[tuple[int, str]] = []
        self.stop_reason = ""
        self.commit = git_commit(self.root)
        self.sweep_id = uuid.uuid4().hex[:8]
        self._stop = False
        self._last_status = 0.0
        self._last_beat = 0.0
        self._lock_handle: Any = None
        self.heartbeats = False

    # -- set-up -------------------------------------------------------------------------------
    def _print(self, text: str) -> None:
        print(text, file=self.options.out, flush=True)

    def _lock(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_handle = open(self.folder / ".sweep.lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"study {self.spec.name!r} in {self.folder} is being run by another sweep; "
                "wait for it, or join with `mats-lab worker` on a database storage"
            ) from None

    def _clear_stages(self) -> None:
        """``--fresh``: the old stage results must not be reused by the new study."""
        stages = self.folder / "stages"
        if stages.is_dir():
            shutil.rmtree(stages)

    def _open(self) -> optuna.Study:
        # A database server may be shared with workers on other machines: only heartbeats tell
        # their live trials from dead ones. Local files are this sweep's alone (it holds the lock).
        self.heartbeats = not self.storage_url.startswith(("journal://", "sqlite"))
        storage = st.open_storage(
            self.storage_url, heartbeat_interval=30 if self.heartbeats else None
        )
        study = st.open_study(
            self.spec, storage, fresh=self.options.fresh and not self.options.worker
        )
        stale = st.fail_stale(study, heartbeats=self.heartbeats or self.options.worker)
        if stale:
            self._print(f"re-queued trials left running by a stopped sweep: {stale}")
        return study

    # -- main loop ----------------------------------------------------------------------------
    def run(self) -> int:
        """Run until the study is done or the budget is spent; returns the exit status."""
        self._lock()
        if self.options.fresh and not self.options.worker:
            self._clear_stages()
        study = self._open()
        self.study = study
        grid = grid_points(self.spec) if self.spec.sampler.type == "grid" else []
        if self.spec.budget.trials is not None and grid:
            grid = grid[: self.spec.budget.trials]
        self.grid = grid
        if grid:
            added = st.enqueue_missing(study, self.spec, grid)
            self._print(f"study {self.spec.name}: {len(grid)} grid trials, {added} queued now")
        self.tracker = Tracker(self.tracking_uri, self.spec.name)
        if self.tracker.connect():
            self.tracker.start_parent(
                self.sweep_id,
                {"git_commit": self.commit, "storage": self.storage_url},
                {"devices": [s.label for s in self.slots], "sampler": self.spec.sampler.type},
            )
        else:
            self._print(f"MLflow offline ({self.tracker.error}); `mats-lab sync` pushes later")
        self.deadline = (
            time.time() + parse_duration(self.spec.budget.time) if self.spec.budget.time else None
        )
        old = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        status = "FINISHED"
        try:
            self._loop()
            if self._stop:
                status = "KILLED"
        except BaseException:
            status = "FAILED"
            raise
        finally:
            self._shutdown(status)
            for sig, handler in old.items():
                signal.signal(sig, handler)
        self._summary()
        if self._stop:
            return 130
        return 1 if any(state == "FAIL" for _, state in self.finished) else 0

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._stop:  # second signal: leave now, the next run re-queues what is left
            raise KeyboardInterrupt
        self._stop = True
        self.stop_reason = signal.Signals(signum).name
        self._print(f"{self.stop_reason}: stopping running stages; run again to resume")

    def _loop(self) -> None:
        while not self._stop:
            self._fill_slots()
            if not self.running and not self.waiting:
                if not self._more_work():
                    return
            self._wait()  # then poll, so a slot freed by the poll is filled at once
            self._poll()
            self._status()

    def _wait(self) -> None:
        """Sleep ``poll`` seconds, or less: until a running stage exits (Linux pidfds)."""
        fds: list[int] = []
        try:
            for run in self.running.values():
                fds.append(os.pidfd_open(run.proc.pid))
            if fds:
                select.select(fds, [], [], self.options.poll)
                return
        except (AttributeError, OSError):  # no pidfd_open here, or the stage is already reaped
            pass
        finally:
            for fd in fds:
                os.close(fd)
        time.sleep(self.options.poll)

    def _budget_left(self) -> bool:
        if self.deadline is not None and time.time() >= self.deadline:
            self.stop_reason = self.stop_reason or "time budget"
            return False
        if self.options.max_trials is not None and self.started_trials >= self.options.max_trials:
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

    def _more_work(self) -> bool:
        """Whether asking can still produce a trial (grid: queued points remain)."""
        if not self._budget_left():
            return False
        if self.grid:
            waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if not waiting:
                st.enqueue_missing(self.study, self.spec, self.grid)  # retries of crashes
                waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if not waiting and self.heartbeats:
                running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if running:  # other workers still at it: wait for a crash to re-queue
                    time.sleep(2.0)
                    self._recover_stale()
                    return True
            return bool(waiting)
        return True

    def _beat(self, trial_id: int) -> None:
        """Record a heartbeat for a running trial (database storages only)."""
        record = getattr(self.study._storage, "record_heartbeat", None)
        if record is not None:
            record(trial_id)

    def _recover_stale(self) -> None:
        live = {r.owner.trial.number for r in self.running.values()}
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.number in live:
                self._beat(trial._trial_id)
        if st.fail_stale(self.study, heartbeats=True):
            st.enqueue_missing(self.study, self.spec, self.grid)

    # -- scheduling ---------------------------------------------------------------------------
    def _fill_slots(self) -> None:
        while self.free and not self._stop:
            item = self._next_ready()
            if item is None:
                return
            owner, plan = item
            self._start(owner, plan, self.free.pop(0))

    def _busy_keys(self) -> set[str]:
        return {r.plan.key for r in self.running.values()}

    def _next_ready(self) -> tuple[_Trial, StagePlan] | None:
        busy = self._busy_keys()
        for owner in list(self.waiting):
            plan = self._advance(owner, busy)
            if plan is not None:
                self.waiting.remove(owner)
                return owner, plan
        # Ask for new trials while slots are free (bounded, in case all are blocked).
        while len(self.waiting) < 2 * len(self.slots) and self._budget_left():
            asked = self._ask()
            if asked is None:
                return None
            owner = asked
            plan = self._advance(owner, busy)
            if plan is not None:
                return owner, plan
            if owner.next_stage < len(owner.plans):
                self.waiting.append(owner)
        return None

    def _advance(self, owner: _Trial, busy: set[str]) -> StagePlan | None:
        """The owner's next stage to run, skipping reusable ones; None if blocked or done."""
        while owner.next_stage < len(owner.plans):
            plan = owner.plans[owner.next_stage]
            result = read_result(stage_dir(self.folder, plan.key))
            if result is not None:
                self._take_result(owner, plan, result, reused=True)
                owner.next_stage += 1
                continue
            if plan.key in busy:
                return None  # the same stage is running for another trial: wait for it
            return plan
        self._finish(owner)
        return None

    def _ask(self) -> _Trial | None:
        if self.grid:
            if not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                return None
        try:
            trial = self.study.ask()
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
        trial.set_user_attr("variables", {k: v for k, v in point.values.items()})
        trial.set_user_attr("sweep", self.sweep_id)
        self.started_trials += 1
        try:
            plans = plan_stages(self.spec, point, self.root, self.spec.command)
        except KeyError as exc:
            self._fail(_Trial(trial, point, []), f"cannot plan the trial: {exc}", st.CONFIG)
            return None
        return _Trial(trial, point, plans)

    def _start(self, owner: _Trial, plan: StagePlan, slot: Slot) -> None:
        work_dir = stage_dir(self.folder, plan.key)
        files = StageFiles(work_dir)
        load_from = None
        if plan.load_from:
            upstream = owner.results.get(plan.load_from)
            load_from = upstream.checkpoint if upstream is not None else None
        spec = StageSpec(
            config=plan.config,
            overrides=plan.overrides,
            knobs=plan.knobs,
            strict=plan.strict,
            seed=plan.seed,
            work_dir=str(work_dir),
            load_from=load_from,
            test=plan.test,
            cpu_threads=slot.threads if slot.gpu is None else None,
            trial=owner.trial.number,
            stage=plan.name,
        )
        log_path = files.log
        work_dir.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log:
            log.write(
                f"\n=== mats-lab: trial {owner.trial.number} stage {plan.name} on {slot.label} "
                f"at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n"
            )
        proc = start_stage(self.command, spec, files.spec, log_path, slot)
        reader = ProgressReader(files.progress)
        reader.update()  # skip what an earlier (killed) run wrote: the report counts new epochs
        self.running[slot.index] = _Running(owner, plan, slot, proc, work_dir, reader)
        if self.heartbeats:  # at once: a trial that never beat is never found stale
            self._beat(owner.trial._trial_id)

    # -- following ----------------------------------------------------------------------------
    def _poll(self) -> None:
        ended = []
        for index, run in list(self.running.items()):
            run.reader.update()
            code = run.proc.poll()
            if code is None:
                self._maybe_prune(run)
                continue
            del self.running[index]
            self.free.append(run.slot)
            self.free.sort(key=lambda s: s.index)
            ended.append((run, code))
        # A grid trial whose last stage succeeded: start the next trial on the freed slot
        # before telling Optuna and queueing the MLflow run (tens of ms, all on the critical
        # path otherwise). A sampler's trials are told first, so the next ask sees the result.
        later = []
        for run, code in ended:
            if self.grid and code == 0 and self._is_last(run):
                later.append((run, code))
            else:
                self._stage_done(run, code)
        if later and not self._stop:
            self._fill_slots()
        for run, code in later:
            self._stage_done(run, code)
        if self.heartbeats and self.running and time.time() - self._last_beat >= HEARTBEAT_EVERY:
            self._last_beat = time.time()  # a DB write per trial: not on every poll
            for run in self.running.values():
                self._beat(run.owner.trial._trial_id)

    def _is_last(self, run: _Running) -> bool:
        return run.plan is run.owner.plans[-1]

    def _maybe_prune(self, run: _Running) -> None:
        if self.spec.pruner.type == "none" or not self._is_last(run):
            return
        metric = self.spec.objectives[0].metric
        name = metric.removeprefix("val/")
        if not metric.startswith("val/"):
            return
        epochs = sorted(e for e, m in run.reader.val.items() if name in m)
        for epoch in epochs[run.reports :]:
            run.owner.trial.report(float(run.reader.val[epoch][name]), step=epoch)
            run.reports += 1
        if run.reports and run.owner.trial.should_prune():
            _terminate(run.proc)
            self._record_history(run.owner, run)
            run.owner.stage_meta.append(self._meta(run.plan, run.work_dir, None, False))
            self._tell(run.owner, TrialState.PRUNED, None)
            self.free.append(run.slot)
            self.free.sort(key=lambda s: s.index)
            del self.running[run.slot.index]

    def _stage_done(self, run: _Running, code: int) -> None:
        owner = run.owner
        result = read_result(run.work_dir)
        self._record_history(owner, run)
        if self._stop and code != 0:
            return  # interrupted: the trial is failed and re-queued at shutdown
        if code != 0 or result is None:
            kind = st.CONFIG if code == CONFIG_ERROR else st.CRASH
            tail = log_tail(StageFiles(run.work_dir).log)
            owner.stage_meta.append(self._meta(run.plan, run.work_dir, None, False))
            self._fail(owner, f"stage {run.plan.name} exited with {code}", kind, tail)
            return
        self._take_result(owner, run.plan, result, reused=bool(result.reused_from))
        owner.next_stage += 1
        plan = self._advance(owner, self._busy_keys())
        if plan is not None:
            self.waiting.insert(0, owner)  # next stage of a started trial goes first
        elif owner.next_stage < len(owner.plans):
            self.waiting.append(owner)

    def _meta(
        self, plan: StagePlan, work_dir: Path, result: StageResult | None, reused: bool
    ) -> dict:
        return {
            "name": plan.name,
            "key": plan.key,
            "work_dir": str(work_dir),
            "config_hash": result.config_hash if result else None,
            "reused": reused,
            "resumed_from": result.resumed_from if result else None,
        }

    def _take_result(
        self, owner: _Trial, plan: StagePlan, result: StageResult, reused: bool
    ) -> None:
        owner.results[plan.name] = result
        owner.stage_meta.append(self._meta(plan, stage_dir(self.folder, plan.key), result, reused))
        if reused:
            self._print(f"trial {owner.trial.number}: stage {plan.name} reused ({plan.key})")

    def _record_history(self, owner: _Trial, run: _Running) -> None:
        from mats_lab.lab.progress import read_progress

        full = read_progress(StageFiles(run.work_dir).progress)  # every run, resumed ones too
        prefix = "" if self._is_last(run) else f"{run.plan.name}/"
        for epoch, metrics in sorted(full.val.items()):
            for name, value in metrics.items():
                if isinstance(value, (int, float)):
                    owner.history.setdefault(f"{prefix}val/{name}", []).append([epoch, value])
        for epoch, loss in full.epoch_losses().items():
            owner.history.setdefault(f"{run.plan.name}/train/loss", []).append([epoch, loss])

    # -- ending trials ------------------------------------------------------------------------
    def _metrics(self, owner: _Trial) -> dict[str, float]:
        metrics: dict[str, float] = {}
        last = owner.plans[-1].name
        peak = 0.0
        wall = 0.0
        for plan in owner.plans:
            result = owner.results.get(plan.name)
            cost = result.cost if result is not None else {}
            for key, value in cost.items():
                if isinstance(value, (int, float)):
                    metrics[f"{plan.name}/{key}"] = float(value)
            peak = max(peak, float(cost.get("peak_memory_mb") or 0))
            wall += float(cost.get("wall_time_s") or 0)
        final = owner.results.get(last) or StageResult()
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

    def _finish(self, owner: _Trial) -> None:
        if owner in self.waiting:
            self.waiting.remove(owner)
        metrics = self._metrics(owner)
        missing = [o.metric for o in self.spec.objectives if o.metric not in metrics]
        if missing:
            produced = ", ".join(sorted(metrics))
            self._fail(
                owner,
                f"objective {', '.join(missing)} was not produced (produced: {produced})",
                st.CONFIG,
            )
            return
        values = [metrics[o.metric] for o in self.spec.objectives]
        self._tell(owner, TrialState.COMPLETE, values, metrics)

    def _fail(self, owner: _Trial, why: str, kind: str, tail: str = "") -> None:
        if owner in self.waiting:
            self.waiting.remove(owner)
        trial = owner.trial
        trial.set_user_attr(st.FAILURE, kind)
        trial.set_user_attr("error", why)
        if tail:
            trial.set_user_attr("log_tail", tail[-8000:])
        self._print(f"trial {trial.number} FAILED ({kind}): {why}")
        if tail:
            self._print("  | " + "\n  | ".join(tail.splitlines()[-15:]))
        self._tell(owner, TrialState.FAIL, None, self._metrics(owner))
        if kind == st.CRASH and self.grid:
            st.enqueue_missing(self.study, self.spec, self.grid)
        elif kind == st.CRASH:
            status = st.PointStatus(self.study, self.spec.retries)
            if not status.exhausted(owner.point.key):
                self.study.enqueue_trial(
                    dict(owner.point.params),
                    user_attrs={st.POINT_KEY: owner.point.key, st.SEED: owner.point.seed},
                )

    def _tell(
        self,
        owner: _Trial,
        state: TrialState,
        values: list[float] | None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        trial = owner.trial
        trial.set_user_attr("metrics", metrics if metrics is not None else self._metrics(owner))
        trial.set_user_attr("history", owner.history)
        trial.set_user_attr("stages", owner.stage_meta)
        trial.set_user_attr("wall_time_s", time.time() - owner.started)
        if state == TrialState.COMPLETE:
            self.study.tell(trial, values)
        else:
            self.study.tell(trial, state=state)
        self.finished.append((trial.number, state.name))
        if state == TrialState.COMPLETE:
            shown = ", ".join(
                f"{o.metric}={v:.4g}"
                for o, v in zip(self.spec.objectives, values or [], strict=False)
            )
            self._print(f"trial {trial.number} COMPLETE ({owner.point.describe()}): {shown}")
        elif state == TrialState.PRUNED:
            self._print(f"trial {trial.number} PRUNED ({owner.point.describe()})")
        frozen = self.study._storage.get_trial(trial._trial_id)
        record = trial_record(frozen, self.commit)
        self.tracker.log_trial(record)

    # -- shutting down ------------------------------------------------------------------------
    def _shutdown(self, status: str) -> None:
        for run in list(self.running.values()):
            _terminate(run.proc)
            trial = run.owner.trial
            trial.set_user_attr(st.FAILURE, st.INTERRUPTED)
            self._record_history(run.owner, run)
            self.study.tell(trial, state=TrialState.FAIL)
            self.finished.append((trial.number, "INTERRUPTED"))
        self.running.clear()
        for owner in list(self.waiting):  # asked but never started: give the point back
            owner.trial.set_user_attr(st.FAILURE, st.INTERRUPTED)
            self.study.tell(owner.trial, state=TrialState.FAIL)
        self.waiting.clear()
        if self.grid:
            st.enqueue_missing(self.study, self.spec, self.grid)
        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        self.tracker.end_parent(status, {"completed_trials": float(len(done))})
        self.tracker.close()
        if self._lock_handle is not None:
            self._lock_handle.close()

    # -- terminal -----------------------------------------------------------------------------
    def _status(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_status < self.options.status_every:
            return
        self._last_status = now
        metric = self.spec.objectives[0].metric.removeprefix("val/")
        for run in sorted(self.running.values(), key=lambda r: r.slot.index):
            r = run.reader
            latest = r.latest_val(metric)
            eta = r.eta()
            self._print(
                f"[{run.slot.label}] trial {run.owner.trial.number} {run.plan.name} "
                f"epoch {r.epoch}/{r.max_epochs or '?'} iter {r.iter}/{r.max_iters or '?'} "
                f"loss {_fmt(r.loss)} {metric} {_fmt(latest)} "
                f"eta {f'{eta:.0f}s' if eta is not None else '?'}"
            )

    def _summary(self) -> None:
        rows = self.study.get_trials(deepcopy=False)
        counts: dict[str, int] = {}
        for t in rows:
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        self._print("")
        self._print(
            f"study {self.spec.name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )
        names = [o.metric for o in self.spec.objectives]
        header = ["trial", "state", *self.spec.space, "seed", *names, "wall_s"]
        lines = [header]
        for t in rows:
            if t.state == TrialState.WAITING:
                continue
            metrics = t.user_attrs.get("metrics", {})
            lines.append(
                [
                    str(t.number),
                    t.state.name,
                    *[str(t.params.get(n, "")) for n in self.spec.space],
                    str(t.user_attrs.get("seed", "")),
                    *[_fmt(metrics.get(n)) for n in names],
                    _fmt(metrics.get("wall_time_s")),
                ]
            )
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        for row in lines:
            self._print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if self.stop_reason:
            self._print(f"stopped early: {self.stop_reason}")
        if not self.tracker.online:
            self._print("MLflow was unavailable: run `mats-lab sync` to push the trials")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _terminate(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()
