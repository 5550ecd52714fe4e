"""A real ``mlflow server`` for tests: PostgreSQL backend store, a local artifact destination,
listening on 127.0.0.1 only.

``start_mlflow(backend_uri, artifacts)`` starts MLflow's own server command (``mlflow server
--backend-store-uri ... --artifacts-destination ... --host 127.0.0.1 --port P --workers 1``) in a
process group of its own and waits, polling ``GET /health`` a bounded number of times, until it
answers. ``stop()`` ends the whole group (the server's workers with it); ``start()`` starts it
again on the same port (a restart in the middle of a sweep). ``rest(path, body)`` calls the
server's REST API directly (``/api/2.0/mlflow/...``), so a test reads what the server holds
without MLflow's client in between.

Only the standard library and subprocess (argument lists, never a shell).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MlflowServer", "MlflowUnavailable", "start_mlflow"]


class MlflowUnavailable(RuntimeError):
    """This environment has no ``mlflow`` command (CI fails on it, others skip)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mlflow_command() -> str:
    """The ``mlflow`` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "mlflow"
    found = str(beside) if beside.is_file() else shutil.which("mlflow")
    if found is None:
        raise MlflowUnavailable(f"no `mlflow` command beside {sys.executable} or on PATH")
    return found


@dataclass
class MlflowServer:
    backend_uri: str
    artifacts: Path
    log: Path
    port: int = field(default_factory=_free_port)
    host: str = "127.0.0.1"
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, polls: int = 240, every: float = 0.5) -> None:
        """Start the server and wait until ``/health`` answers (at most ``polls`` polls)."""
        command = [
            mlflow_command(),
            "server",
            *("--backend-store-uri", self.backend_uri),
            *("--artifacts-destination", str(self.artifacts)),
            *("--host", self.host, "--port", str(self.port), "--workers", "1"),
        ]
        # Without MLflow's GenAI job runner: its huey consumers (interpreters importing MLflow,
        # about 3.5 s of CPU each at every start) serve no tracking call.
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - an argument list, never a shell
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        for _ in range(polls):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(every)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer {self.url}/health:\n{self.log_tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL what is left after 20 s."""
        process, self._process = self._process, None
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 20.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # workers left behind by a leader that exited first
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def rest(self, path: str, body: dict | None = None) -> dict:
        """Call ``/api/2.0/mlflow/<path>`` (POST with a JSON ``body``, else GET)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - loopback http only
            f"{self.url}/api/2.0/mlflow/{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="POST" if data is not None else "GET",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")

    def runs(self, experiment_name: str) -> list[dict]:
        """Every run of an experiment, through the REST API (paged)."""
        found = self.rest(f"experiments/get-by-name?experiment_name={experiment_name}")
        experiment_id = found["experiment"]["experiment_id"]
        runs: list[dict] = []
        token = None
        for _ in range(100):
            body: dict = {"experiment_ids": [experiment_id], "max_results": 1000}
            if token:
                body["page_token"] = token
            page = self.rest("runs/search", body)
            runs.extend(page.get("runs", []))
            token = page.get("next_page_token")
            if not token:
                break
        return runs

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_mlflow(backend_uri: str, artifacts: Path, log: Path) -> MlflowServer:
    """Start ``mlflow server`` on a free loopback port; the caller must ``stop()`` it."""
    artifacts.mkdir(parents=True, exist_ok=True)
    server = MlflowServer(backend_uri, artifacts, log)
    server.start()
    return server
