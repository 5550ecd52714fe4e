"""optuna-dashboard (the project's ``ui`` extra) reads a study's own storage, on loopback, as
the README shows: ``optuna-dashboard studies/runs/<study>/optuna.journal``."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
from ci_guard import require

from mats_lab.lab.study import open_storage


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_dashboard_serves_a_sweeps_journal_on_loopback(tmp_path):
    exe = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent))
    require(exe is not None, "optuna-dashboard is not installed (pip install 'mats-lab[ui]')")
    journal = tmp_path / "runs" / "demo" / "optuna.journal"
    study = optuna.create_study(study_name="demo", storage=open_storage(f"journal://{journal}"))
    study.enqueue_trial({"keep_ratio": 0.3})
    trial = study.ask()
    trial.suggest_float("keep_ratio", 0.1, 1.0)
    study.tell(trial, 0.8)
    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603
        [str(exe), str(journal), "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        answer = None
        for _ in range(120):  # bounded: the server is up within a few seconds here
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as reply:
                    answer = json.loads(reply.read())
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        assert answer is not None, proc.stderr.read().decode() if proc.poll() is not None else ""
        names = [s["study_name"] for s in answer["study_summaries"]]
        assert names == ["demo"]
    finally:
        proc.terminate()
        proc.wait(30)
