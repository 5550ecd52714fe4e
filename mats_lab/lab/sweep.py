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
server from other machines.

Only the standard library, ``filelock`` and the lab's own modules are used.
"""

from __future__ import annotations

import bisect
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import optuna
from filelock import FileLock, Timeout
from optuna.trial import TrialState

from mats_lab.lab import study as st
from mats_lab.lab.console import Console, StatusRow
from mats_lab.lab.driver import StudyDriver, TrialRun
from mats_lab.lab.launch import DEFAULT_COMMAND, make_slots
from mats_lab.lab.packing import Scan
from mats_lab.lab.pool import DevicePool, StageProcess
from mats_lab.lab.progress import ProgressReader
from mats_lab.lab.space import StagePlan
from mats_lab.lab.tracking import Tracker
from mats_lab.protocol.layout import StageFiles, default_storage, default_tracking, stage_dir
from mats_lab.protocol.provenance import git_commit
from mats_lab.protocol.records import StageSpec
from mats_lab.protocol.spec import StudySpec, parse_duration, study_paths

__all__ = ["Sweep", "SweepOptions"]

HEARTBEAT_EVERY = 5.0  # seconds between heartbeats of live trials (grace period: 120 s)


@dataclass
class SweepOptions:
    devices: list[int] | int | str | None = None  # None: the study's resources.devices
    max_trials: int | None = None  # new trials started by this invocation
    fresh: bool = False
    storage: str | None = None
    tracking_uri: str | None = None
    worker: bool = False  # join a study on a database server
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
        storage = st.open_storage(self.storage_url, heartbeat_interval=30 if heartbeats else None)
        fresh = self.options.fresh and not self.options.worker
        study = st.open_study(self.spec, storage, fresh=fresh)
        stale = st.fail_stale(study, heartbeats=heartbeats or self.options.worker)
        if stale:
            self.console.say(f"re-queued trials left running by a stopped sweep: {stale}")
        return study, heartbeats

    # -- main loop ----------------------------------------------------------------------------
    def run(self) -> int:
        """Run until the study is done or the budget is spent; returns the exit status."""
        with self._locked():
            if self.options.fresh and not self.options.worker:
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
            )
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
        if self.tracker.connect():
            self.tracker.start_parent(
                self.sweep_id,
                {"git_commit": self.driver.commit, "storage": self.storage_url},
                {
                    "devices": [s.label for s in self.pool.slots],
                    "sampler": self.spec.sampler.type,
                },
            )
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
            self.pool.wait(self.options.poll)  # then poll: a device freed is refilled at once
            self._poll()
            metric = self.spec.objectives[0].metric.removeprefix("val/")
            self.console.status(self._rows(), metric)

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
        waiting stage fits, while fewer than two per slot wait."""
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

    def _wait_for_devices(self, run: TrialRun) -> None:
        """Queue ``run`` among the waiting trials, oldest first."""
        bisect.insort(self.waiting, run, key=lambda r: r.order)

    def _start(self, run: TrialRun, plan: StagePlan) -> None:
        slots = self.pool.take(plan.devices)
        work_dir = stage_dir(self.folder, plan.key)
        files = StageFiles(work_dir)
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
                f"at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n"
            )
        reader = ProgressReader(files.progress)
        reader.update()  # skip what an earlier (killed) run wrote: the report counts new epochs
        self.pool.start(slots, self.command, spec, files.spec, files.log, _Stage(run, plan, reader))
        if self.driver.heartbeats:  # at once: a trial that never beat is never found stale
            self.driver.beat([run])

    # -- following ----------------------------------------------------------------------------
    def _poll(self) -> None:
        for stage in self.pool.running:
            stage.tag.reader.update()
        ended = self.pool.ended()
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
        live = self._live()
        if self.driver.heartbeats and live and time.time() - self._last_beat >= HEARTBEAT_EVERY:
            self._last_beat = time.time()  # a DB write per trial: not on every poll
            self.driver.beat(live)

    def _maybe_prune(self, stage: StageProcess[_Stage]) -> None:
        tag = stage.tag
        tag.reports = self.driver.report(tag.run, tag.plan, tag.reader, tag.reports)
        if self.driver.should_prune(tag.run, tag.reports):
            self.pool.stop(stage)
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
