"""The sweep: one process owns a study and keeps every device busy with trial stages.

It wires three parts and runs the loop between them: the study driver
(:mod:`mats_lab.lab.driver`: Optuna ask/tell, stage reuse, pruning, retries), the device pool
(:mod:`mats_lab.lab.pool`: slots, stage processes) and the console (:mod:`mats_lab.lab.console`).
Each turn of the loop gives free devices to waiting stages (:mod:`mats_lab.lab.packing`'s rule:
oldest trial first, smaller stages backfill while a bigger one waits, a big stage skipped too
often reserves), waits until a stage exits or ``poll`` seconds pass, takes the exits, reports
validation metrics to the pruner and prints status lines. A stage needing more devices than the
pool has is refused before anything starts. SIGINT/SIGTERM stop every stage (all its ranks) and
fail their trials as interrupted; the next run re-queues them and resumes from checkpoints.

One sweep per study folder (a file lock); ``mats-lab worker`` joins a study on a database
server from other machines. On a shared storage (a database server) every worker takes only
trials it can start now: it asks for a queued trial only when that trial's next stage fits its
free devices and runs nowhere else, and hands back one it cannot start, so N workers with equal
devices split a study evenly. Each worker beats for every trial it holds and fails and re-queues
the trials of workers that stopped beating. Stage work dirs may live in a shared stage store
(``stage_store``), each guarded by a per-stage lock (:mod:`mats_lab.lab.stagelocks`), so any
node reuses a finished stage there and resumes a killed one from its checkpoint.

One file although it passes 400 lines: it is the loop that ties the pool, the driver, the
console, the stage locks and the tracker together, and each of its steps (fill, poll, stop)
needs all of them; what each part does lives in that part's own module.

Only the standard library, ``filelock`` and the lab's own modules are used.
"""

from __future__ import annotations

import bisect
import shutil
import signal
import socket
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import optuna
from filelock import FileLock, Timeout
from optuna.trial import TrialState

from mats_lab.lab import study as st
from mats_lab.lab.console import Console, StatusRow, study_eta
from mats_lab.lab.driver import StudyDriver, TrialRun
from mats_lab.lab.launch import DEFAULT_COMMAND, make_slots
from mats_lab.lab.packing import Scan
from mats_lab.lab.pool import DevicePool, StageProcess
from mats_lab.lab.progress import ProgressReader
from mats_lab.lab.records import trial_record
from mats_lab.lab.space import StagePlan
from mats_lab.lab.tracking import Tracker
from mats_lab.protocol.layout import (
    StageFiles,
    default_storage,
    default_tracking,
    stage_dir,
    stage_root,
)
from mats_lab.protocol.provenance import git_commit
from mats_lab.protocol.records import StageSpec, read_result
from mats_lab.protocol.spec import StudySpec, parse_duration, study_paths

__all__ = ["Sweep", "SweepOptions"]

HEARTBEAT = 30  # seconds: a shared storage's heartbeat interval (grace period: 4 of them)


@dataclass
class SweepOptions:
    devices: list[int] | int | str | None = None  # None: the study's resources.devices
    max_trials: int | None = None  # new trials started by this invocation
    fresh: bool = False
    storage: str | None = None
    tracking_uri: str | None = None
    worker: bool = False  # join a study on a database server
    stage_store: str | None = None  # shared folder for stage work dirs (None: the study's)
    heartbeat: int = HEARTBEAT  # seconds; trials unbeaten for 4 of them are failed, re-queued
    poll: float = 0.2  # seconds between polls of the running stages
    status_every: float = 10.0  # seconds between progress lines (non-TTY)
    out: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass
class _Stage:
    """What the sweep attaches to a running stage process."""

    run: TrialRun
    plan: StagePlan
    reader: ProgressReader
    reports: int = 0  # validations sent to the pruner


class Sweep:
    """Run a study to its end (or budget) on this machine's devices."""

    def __init__(self, spec: StudySpec, study_file: Path, options: SweepOptions) -> None:
        self.spec = spec
        self.options = options
        self.folder, self.root = study_paths(spec, study_file)
        self.stages = stage_root(study_file, self.folder, options.stage_store or spec.stage_store)
        self.command = list(spec.command) if spec.command else list(DEFAULT_COMMAND)
        self.storage_url = options.storage or spec.storage or default_storage(self.folder)
        self.tracking_uri = (
            options.tracking_uri or spec.tracking_uri or default_tracking(self.folder)
        )
        res = spec.resources
        devices = options.devices if options.devices is not None else res.devices
        self.pool: DevicePool[_Stage] = DevicePool(
            make_slots(devices, res.trials_per_device, res.cpu_threads)
        )
        for stage in spec.stages:  # a stage that can never run: refuse before anything starts
            self.pool.check(stage.name, stage.devices)
        self.console = Console(options.out, options.status_every)
        self.waiting: list[TrialRun] = []  # asked trials whose next stage waits, oldest first
        self.cut: list[_Stage] = []  # stages that ended while stopping: told at shutdown
        self.stop_reason = ""
        self.sweep_id = uuid.uuid4().hex[:8]
        self._stale: list[int] = []  # trials a killed sweep left running, failed on open
        self._stage_seconds: dict[str, list[float]] = {}  # finished stages' wall time
        self._stop = False
        self._last_beat = 0.0

    # -- set-up -------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One sweep per study folder: the study's journal and stage dirs are its alone."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.folder / ".sweep.lock", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RuntimeError(
                f"study {self.spec.name!r} in {self.folder} is being run by another sweep; "
                "wait for it, or join with `mats-lab worker` on a database storage"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _open(self) -> tuple[optuna.Study, bool]:
        # A database server may be shared with workers on other machines: only heartbeats tell
        # their live trials from dead ones. Local files are this sweep's alone (it holds the lock).
        heartbeats = not self.storage_url.startswith(("journal://", "sqlite"))
        interval = self.options.heartbeat if heartbeats else None
        storage = st.open_storage(self.storage_url, heartbeat_interval=interval)
        fresh = self.options.fresh and not self.options.worker
        study = st.open_study(self.spec, storage, fresh=fresh)
        if self.options.worker and self.spec.sampler.type != "grid":
            seed = zlib.crc32(f"{self.spec.sampler.seed}:{self.sweep_id}".encode())
            study.sampler = st.create_sampler(self.spec, seed=seed)
            self.console.say(f"sampler seed {seed}: this worker's own (workers draw apart)")
        stale = st.fail_stale(study, heartbeats=heartbeats or self.options.worker)
        if stale:
            self.console.say(f"re-queued trials left running by a stopped sweep: {stale}")
        self._stale = stale
        return study, heartbeats

    # -- main loop ----------------------------------------------------------------------------
    def run(self) -> int:
        """Run until the study is done or the budget is spent; returns the exit status."""
        with self._locked():
            if self.options.fresh and not self.options.worker and self.stages == self.folder:
                shutil.rmtree(self.folder / "stages", ignore_errors=True)  # no stale reuse
            study, heartbeats = self._open()
            self.tracker = Tracker(self.tracking_uri, self.spec.name)
            budget = self.spec.budget.time
            self.driver = StudyDriver(
                self.spec,
                self.folder,
                self.root,
                study,
                self.tracker,
                self.console.say,
                commit=git_commit(self.root),
                sweep_id=self.sweep_id,
                heartbeats=heartbeats,
                max_trials=self.options.max_trials,
                deadline=time.time() + parse_duration(budget) if budget else None,
                stages=self.stages,
            )
            if self.options.worker:
                self.console.say(
                    f"worker {self.sweep_id} on {socket.gethostname()}: "
                    f"{len(self.pool.slots)} slots, heartbeat {self.options.heartbeat} s"
                )
            if self.stages != self.folder:
                self.console.say(f"stage store: {self.stages}")
            self.driver.queue_grid()
            self._start_tracking()
            self._run_loop()
        self.console.summary(
            self.spec.name,
            study.get_trials(deepcopy=False),
            list(self.spec.space),
            [o.metric for o in self.spec.objectives],
            self.stop_reason or self.driver.stop_reason,
            self.tracker.online,
        )
        if self._stop:
            return 130
        return 1 if any(state == "FAIL" for _, state in self.driver.finished) else 0

    def _start_tracking(self) -> None:
        fresh = self.options.fresh and not self.options.worker
        if self.tracker.connect(fresh=fresh):
            if self.tracker.archived:
                self.console.say(f"--fresh: earlier MLflow runs kept in experiment "
                                 f"{self.tracker.archived!r}")  # fmt: skip
            if not self.options.worker:  # this sweep owns the study: earlier parents are dead
                self.tracker.close_stale_parents(self.sweep_id)
            self.tracker.start_parent(
                self.sweep_id,
                {"git_commit": self.driver.commit, "storage": self.storage_url},
                {
                    "devices": [s.label for s in self.pool.slots],
                    "sampler": self.spec.sampler.type,
                },
            )
            for number in self._stale:  # the killed sweep's trials get their FAILED runs
                trial = st.finished_trial(self.driver.study, number)
                self.tracker.log_trial(trial_record(trial, self.driver.commit))
        else:
            self.console.say(f"MLflow offline ({self.tracker.error}); `mats-lab sync` pushes later")

    def _run_loop(self) -> None:
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

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._stop:  # second signal: leave now, the next run re-queues what is left
            raise KeyboardInterrupt
        self._stop = True
        self.stop_reason = signal.Signals(signum).name
        self.console.say(f"{self.stop_reason}: stopping running stages; run again to resume")

    def _loop(self) -> None:
        while not self._stop:
            self._fill()
            if not self.pool.running and not self.waiting:
                if not self.driver.more_work(self._live()):
                    return
            idle = self.driver.heartbeats and not self.pool.running and not self.waiting
            # then poll: a device freed is refilled at once (an idle worker asks less often)
            self.pool.wait(max(self.options.poll, 1.0) if idle else self.options.poll)
            self._poll()
            metric = self.spec.objectives[0].metric.removeprefix("val/")
            self.console.status(self._rows(), metric, overall=self._overall_eta)

    def _overall_eta(self) -> str:
        """``study: N stages to go, eta ...`` from this sweep's finished stages ('' before)."""
        running = [(s.tag.plan.name, len(s.slots), time.time() - s.started)
                   for s in self.pool.running]  # fmt: skip
        busy = {s.tag.plan.key for s in self.pool.running}
        todo: dict[str, tuple[str, int]] = {}
        for run in self.waiting:
            for plan in run.plans[run.next_stage :]:
                if plan.key not in busy:
                    todo[plan.key] = (plan.name, plan.devices)
        points = {p.key: p for p in self.driver.grid}
        queued = self.driver.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        for trial in queued:
            point = points.get(str(trial.user_attrs.get(st.POINT_KEY, "")))
            if point is None:
                continue
            for plan in self.driver.plans_of(point):
                if plan.key not in busy and read_result(stage_dir(self.stages, plan.key)) is None:
                    todo[plan.key] = (plan.name, plan.devices)
        eta = study_eta(self._stage_seconds, list(todo.values()), running, self.pool.devices)
        if eta is None:
            return ""
        shown = f"{eta:.0f} s" if eta < 120 else f"{eta / 60:.0f} min"
        return f"study: {len(todo) + len(running)} stages to go, eta {shown}"

    def _live(self) -> list[TrialRun]:
        return [s.tag.run for s in self.pool.running] + self.waiting

    def _rows(self) -> list[StatusRow]:
        stages = sorted(self.pool.running, key=lambda s: s.first)
        return [StatusRow(s.label, s.tag.run.number, s.tag.plan.name, s.tag.reader) for s in stages]

    # -- giving devices to stages -------------------------------------------------------------
    def _fill(self) -> None:
        while self.pool.free and not self._stop:
            picked = self._pick()
            if picked is None:
                return
            self._start(*picked)

    def _pick(self) -> tuple[TrialRun, StagePlan] | None:
        """The next stage to start under the packing rule; asks for new trials when no
        waiting stage fits (one sweep: while fewer than two per slot wait; a shared storage:
        only trials that can start now)."""
        busy = {s.tag.plan.key for s in self.pool.running}
        scan = Scan(self.pool.free_devices(), limit=self.pool.devices)
        for run in list(self.waiting):
            plan = self.driver.advance(run, busy)
            if run.told:
                self.waiting.remove(run)
            if plan is None:
                continue  # done, or the same stage runs for another trial
            verdict = scan.offer(run, plan.devices)
            if verdict == "start":
                self.waiting.remove(run)
                return run, plan
            if verdict == "stop":
                return None
        if self.driver.heartbeats:
            return self._ask_fairly(busy, scan)
        while len(self.waiting) < 2 * len(self.pool.slots) and self.driver.budget_left():
            asked = self.driver.ask()
            if asked is None:
                return None
            plan = self.driver.advance(asked, busy)
            if plan is not None and scan.offer(asked, plan.devices) == "start":
                return asked, plan
            if not asked.told:
                self._wait_for_devices(asked)
        return None

    def _ask_fairly(self, busy: set[str], scan: Scan) -> tuple[TrialRun, StagePlan] | None:
        """On a shared storage: ask only for a trial whose next stage can start here now, and
        hand back one that cannot (another worker asked the trial peeked at first), so trials
        waiting on a stage that runs elsewhere stay queued for whichever worker frees up."""
        while self.driver.budget_left():
            needs = self.driver.next_queued_needs(busy)
            if needs is None or needs > scan.free:
                return None
            asked = self.driver.ask()
            if asked is None:
                return None
            plan = self.driver.advance(asked, busy)
            if asked.told:
                continue  # every stage reused: told, ask the next
            if plan is not None and scan.offer(asked, plan.devices) == "start":
                return asked, plan
            self.console.say(f"trial {asked.number}: cannot start here now, handed back")
            self.driver.hand_back(asked)
            return None
        return None

    def _wait_for_devices(self, run: TrialRun) -> None:
        """Queue ``run`` among the waiting trials, oldest first."""
        bisect.insort(self.waiting, run, key=lambda r: r.order)

    def _start(self, run: TrialRun, plan: StagePlan) -> None:
        work_dir = stage_dir(self.stages, plan.key)
        files = StageFiles(work_dir)
        if not self.driver.locks.acquire(plan.key):  # another worker took it a moment ago
            self._wait_for_devices(run)
            return
        if read_result(work_dir) is not None:  # it finished a moment ago: reuse it
            self.driver.locks.release(plan.key)
            self._wait_for_devices(run)
            return
        if files.checkpoint() is not None:
            self.console.say(
                f"trial {run.number}: stage {plan.name} resumes from checkpoint "
                f"{files.checkpoint()}"
            )
        slots = self.pool.take(plan.devices)
        upstream = run.results.get(plan.load_from) if plan.load_from else None
        cpu = slots[0].gpu is None
        spec = StageSpec(
            config=plan.config,
            overrides=plan.overrides,
            knobs=plan.knobs,
            strict=plan.strict,
            seed=plan.seed,
            work_dir=str(work_dir),
            load_from=upstream.checkpoint if upstream is not None else None,
            test=plan.test,
            nprocs=plan.devices,
            cpu_threads=slots[0].threads if cpu else None,
            trial=run.number,
            stage=plan.name,
        )
        work_dir.mkdir(parents=True, exist_ok=True)
        label = "+".join(s.label for s in slots)
        with open(files.log, "a") as log:
            log.write(
                f"\n=== mats-lab: trial {run.number} stage {plan.name} on {label} "
                f"of {socket.gethostname()} (worker {self.sweep_id}) "
                f"at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n"
            )
        reader = ProgressReader(files.progress)
        reader.update()  # skip what an earlier (killed) run wrote: the report counts new epochs
        try:
            self.pool.start(
                slots, self.command, spec, files.spec, files.log, _Stage(run, plan, reader)
            )
        except BaseException:
            self.driver.locks.release(plan.key)
            raise
        if self.driver.heartbeats:  # at once: a trial that never beat is never found stale
            self.driver.beat([run])

    # -- following ----------------------------------------------------------------------------
    def _poll(self) -> None:
        for stage in self.pool.running:
            stage.tag.reader.update()
        ended = self.pool.ended()
        for stage, code in ended:
            self.driver.locks.release(stage.tag.plan.key)
            if code == 0:  # the study ETA learns from stages that trained to their end
                name = stage.tag.plan.name
                self._stage_seconds.setdefault(name, []).append(time.time() - stage.started)
        for stage in list(self.pool.running):
            self._maybe_prune(stage)
        # A grid trial whose last stage succeeded: start the next trial on the freed devices
        # before telling Optuna and queueing the MLflow run (tens of ms, all on the critical
        # path otherwise). A sampler's trials are told first, so the next ask sees the result.
        later = []
        for stage, code in ended:
            tag = stage.tag
            if self.driver.grid and code == 0 and tag.run.is_last(tag.plan):
                later.append((stage, code))
            else:
                self._stage_done(stage, code)
        if later and not self._stop:
            self._fill()
        for stage, code in later:
            self._stage_done(stage, code)
        every = min(5.0, float(self.options.heartbeat))
        if self.driver.heartbeats and time.time() - self._last_beat >= every:
            self._last_beat = time.time()  # a DB write per trial: not on every poll
            self.driver.recover_stale(self._live())  # beats ours, fails dead workers' trials

    def _maybe_prune(self, stage: StageProcess[_Stage]) -> None:
        tag = stage.tag
        tag.reports = self.driver.report(tag.run, tag.plan, tag.reader, tag.reports)
        if self.driver.should_prune(tag.run, tag.reports):
            self.pool.stop(stage)
            self.driver.locks.release(tag.plan.key)
            self.driver.pruned(tag.run, tag.plan)

    def _stage_done(self, stage: StageProcess[_Stage], code: int) -> None:
        tag = stage.tag
        if self._stop and code != 0:
            self.cut.append(tag)  # interrupted: failed and re-queued at shutdown
            return
        self.driver.stage_ended(tag.run, tag.plan, code)
        if not tag.run.told:
            busy = {s.tag.plan.key for s in self.pool.running}
            self.driver.advance(tag.run, busy)  # reuses stages already done; tells when done
        if not tag.run.told:
            self._wait_for_devices(tag.run)

    # -- shutting down ------------------------------------------------------------------------
    def _shutdown(self, status: str) -> None:
        for stage in self.pool.stop_all():
            self.driver.interrupt(stage.tag.run, stage.tag.plan)
        self.driver.locks.release_all()
        for tag in self.cut:
            self.driver.interrupt(tag.run, tag.plan)
        for run in self.waiting:  # asked but never started: give the point back
            self.driver.interrupt(run)
        self.waiting.clear()
        self.driver.close()
        study = self.driver.study
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        self.tracker.end_parent(status, {"completed_trials": float(len(done))})
        self.tracker.close()
