"""The pieces the cluster tests rely on, one at a time (no servers):

- a stage lock held by one process is seen as taken by another, and freed when that process is
  SIGKILLed (the kernel drops it: a lost node never blocks its stage for ever);
- the tracker retries a failing MLflow call with backoff and in order, instead of going offline
  after the first error, and goes offline only when the retry window is spent.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

from mats_lab.lab.stagelocks import StageLocks
from mats_lab.lab.tracking import Tracker
from mats_lab.protocol.layout import stage_lock

HOLD = """
import sys, time
from mats_lab.lab.stagelocks import StageLocks
from pathlib import Path
locks = StageLocks(Path(sys.argv[1]))
assert locks.acquire("pretrain-abc")
print("held", flush=True)
time.sleep(600)
"""


def test_a_stage_lock_is_taken_elsewhere_until_its_holder_dies(tmp_path):
    holder = subprocess.Popen(  # noqa: S603 - an argument list
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        here = StageLocks(tmp_path)
        assert here.taken_elsewhere("pretrain-abc")
        assert not here.acquire("pretrain-abc")
        assert not here.taken_elsewhere("finetune-def")  # other stages are free
        holder.send_signal(signal.SIGKILL)  # the node is lost
        holder.wait()
        assert not here.taken_elsewhere("pretrain-abc")
        assert here.acquire("pretrain-abc")
        assert here.held_here("pretrain-abc") and not here.taken_elsewhere("pretrain-abc")
        assert stage_lock(tmp_path, "pretrain-abc").is_file()
        here.release_all()
        assert not here.held_here("pretrain-abc")
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


def _started(tracker: Tracker) -> None:
    tracker._thread = threading.Thread(target=tracker._work, daemon=True)  # as connect() does
    tracker._thread.start()


def test_the_tracker_retries_in_order_through_an_outage():
    tracker = Tracker("http://127.0.0.1:9", "s", retry_for=60.0, backoff=0.01)
    _started(tracker)
    done: list[str] = []
    failures = {"first": 3}

    def job(name: str):
        def run() -> None:
            if failures.get(name, 0) > 0:
                failures[name] -= 1
                raise ConnectionError("server restarting")
            done.append(name)

        return run

    for name in ("first", "second", "third"):
        tracker.submit(job(name))
    tracker.close(timeout=60)
    assert done == ["first", "second", "third"]  # nothing lost, nothing reordered
    assert tracker.online and tracker.retries == 3


def test_the_tracker_goes_offline_when_the_retry_window_is_spent():
    tracker = Tracker("http://127.0.0.1:9", "s", retry_for=0.05, backoff=0.01)
    _started(tracker)
    calls = []

    def down() -> None:
        calls.append(1)
        raise ConnectionError("still down")

    tracker.submit(down)
    tracker.close(timeout=60)
    assert not tracker.online and "still down" in tracker.error
    assert len(calls) >= 2  # retried before giving up
