"""A throwaway PostgreSQL server for tests, from Debian's packages (``.ci/install-postgres``).

``start_postgres()`` runs ``initdb`` into a fresh temporary folder, starts ``postgres`` listening
on 127.0.0.1 only (on a free port; its unix socket stays inside the folder), waits with
``pg_isready`` until it accepts connections, creates a database and returns a
:class:`PostgresServer` whose ``url`` is a SQLAlchemy URL
(``postgresql+psycopg://postgres@127.0.0.1:PORT/DB``, psycopg 3; trust authentication,
loopback only); ``plain_url`` is the same without the driver (``postgresql://``), which
SQLAlchemy 2.1 also resolves to psycopg 3.
``stop()`` shuts the server down and deletes the folder. Durability is switched off (``fsync``,
``synchronous_commit``, ``full_page_writes``): the cluster lives for one test session.

PostgreSQL refuses to run as root. As root, the server programs run as the ``postgres`` system
user (created by Debian's package) through ``setpriv`` (or ``runuser``), and the folder is handed
to that user; otherwise they run as the current user. Where setpriv exists the server also gets
SIGINT (fast shutdown) should the process that started it die without stopping it.

Only the standard library and subprocess (argument lists, never a shell).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
REQUIRED = ("initdb", "postgres", "pg_isready", "createdb")
SUPERUSER = "postgres"  # the cluster's bootstrap superuser (any OS user may connect as it)
SERVER_OS_USER = "postgres"  # who runs the server when we are root (Debian's system user)
_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class PostgresUnavailable(RuntimeError):
    """This machine cannot run a throwaway server; the message says why (tests skip on it)."""


def find_bindir(root: Path = PG_ROOT) -> Path:
    """Newest ``/usr/lib/postgresql/<version>/bin`` holding every program this module runs."""
    found = []
    for bindir in root.glob("*/bin"):
        version = bindir.parent.name
        if re.fullmatch(r"\d+(\.\d+)*", version) and all(
            os.access(bindir / name, os.X_OK) for name in REQUIRED
        ):
            found.append((tuple(int(part) for part in version.split(".")), bindir))
    if not found:
        raise PostgresUnavailable(
            f"no PostgreSQL server programs ({', '.join(REQUIRED)}) under {root}/<version>/bin; "
            "install Debian's postgresql package (.ci/install-postgres)"
        )
    return max(found)[1]


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), _SYSTEM_PATH]))


def _server_prefix() -> tuple[list[str], pwd.struct_passwd | None]:
    """Command prefix that runs the server programs, and the account they run as (None: us)."""
    setpriv = _which("setpriv")
    if os.geteuid() != 0:
        return ([setpriv, "--pdeathsig=INT", "--"] if setpriv else []), None
    try:
        account = pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and there is no {SERVER_OS_USER!r} system user to run the "
            "server as (initdb and postgres refuse root)"
        ) from None
    if setpriv:
        return [
            setpriv,
            f"--reuid={account.pw_uid}",
            f"--regid={account.pw_gid}",
            "--init-groups",
            "--pdeathsig=INT",
            "--",
        ], account
    runuser = _which("runuser")
    if runuser:
        return [runuser, "-u", SERVER_OS_USER, "--"], account
    raise PostgresUnavailable(
        f"running as root, and neither setpriv nor runuser is there to run the server as "
        f"{SERVER_OS_USER!r}"
    )


def _clean_env() -> dict[str, str]:
    """Our environment without libpq's PG* variables (PGHOST, PGSSLMODE, ... would interfere)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _temp_base(for_other_user: bool) -> str:
    """Where to make the cluster's folder: the usual temporary folder, unless its path is too
    long for the unix socket (107 bytes) or, when the server runs as another user, that user
    cannot reach it; then /tmp."""
    base = Path(tempfile.gettempdir()).resolve()
    too_long = len(str(base)) > 60
    hidden = for_other_user and any(
        not os.stat(folder).st_mode & 0o001 for folder in (base, *base.parents)
    )
    return "/tmp" if too_long or hidden else str(base)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running throwaway cluster; ``url`` is what SQLAlchemy / Optuna's RDBStorage take."""

    bindir: Path
    workdir: Path
    port: int
    dbname: str
    host: str = "127.0.0.1"
    user: str = SUPERUSER
    startup_s: float = 0.0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def version(self) -> str:
        return self.bindir.parent.name

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def logfile(self) -> Path:
        return self.workdir / "server.log"

    @property
    def plain_url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def url(self) -> str:
        return self.plain_url.replace("postgresql://", "postgresql+psycopg://", 1)

    def create_database(self, name: str, timeout: float = 60.0) -> str:
        """Create database ``name`` in this cluster; returns its SQLAlchemy (psycopg 3) URL."""
        _run(
            [
                str(self.bindir / "createdb"),
                *("-h", self.host, "-p", str(self.port), "-U", self.user, name),
            ],
            "createdb",
            cwd=self.workdir,
            timeout=timeout,
        )
        return self.url.rsplit("/", 1)[0] + "/" + name

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (open sessions are ended), then remove every file of the cluster."""
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _run(cmd: list[str], what: str, cwd: Path, timeout: float) -> None:
    result = subprocess.run(
        cmd,
        cwd=cwd,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


def _settings(port: int, socket_dir: Path) -> list[str]:
    return [
        f"port={port}",
        "listen_addresses=127.0.0.1",
        f"unix_socket_directories={socket_dir}",
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "shared_buffers=16MB",
        "max_connections=100",
    ]


def _start_server(
    server: PostgresServer, prefix: list[str], timeout: float
) -> subprocess.Popen[bytes]:
    """Start postgres on ``server.port``; return once pg_isready says it accepts connections."""
    command = [*prefix, str(server.bindir / "postgres"), "-D", str(server.datadir)]
    for setting in _settings(server.port, server.workdir):
        command += ["-c", setting]
    with open(server.logfile, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=server.workdir,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ready = [
        str(server.bindir / "pg_isready"),
        *("-q", "-h", server.host, "-p", str(server.port), "-U", server.user, "-d", "postgres"),
        *("-t", "1"),
    ]
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"postgres exited with {process.returncode} before accepting connections:\n"
                + server.log_tail()
            )
        probe = subprocess.run(
            ready, env=_clean_env(), stdin=subprocess.DEVNULL, capture_output=True, check=False
        )
        if probe.returncode == 0:
            return process
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(
                f"postgres did not accept connections within {timeout:.0f} s:\n" + server.log_tail()
            )
        time.sleep(0.05)


def start_postgres(dbname: str = "test", timeout: float = 60.0) -> PostgresServer:
    """Start a throwaway cluster and create ``dbname`` in it; the caller must ``stop()`` it.

    Raises :class:`PostgresUnavailable` when this machine cannot run one (no binaries; root
    without a ``postgres`` user), RuntimeError when starting it fails.
    """
    started = time.monotonic()
    bindir = find_bindir()
    prefix, account = _server_prefix()
    workdir = Path(tempfile.mkdtemp(prefix="pg-test-", dir=_temp_base(account is not None)))
    server = PostgresServer(bindir=bindir, workdir=workdir, port=0, dbname=dbname)
    try:
        if account is not None:
            os.chown(workdir, account.pw_uid, account.pw_gid)
        os.chmod(workdir, 0o700)
        _run(
            [
                *prefix,
                str(bindir / "initdb"),
                *("-D", str(server.datadir), "-U", SUPERUSER),
                *("--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"),
            ],
            "initdb",
            cwd=workdir,
            timeout=timeout,
        )
        # A free port may be taken between probing and binding it: then try another one.
        for attempt in range(3):
            server.port = _free_port()
            try:
                server._process = _start_server(server, prefix, timeout)
                break
            except RuntimeError:
                if attempt == 2 or "already in use" not in server.log_tail():
                    raise
        _run(
            [
                str(bindir / "createdb"),
                *("-h", server.host, "-p", str(server.port), "-U", server.user, dbname),
            ],
            "createdb",
            cwd=workdir,
            timeout=timeout,
        )
    except BaseException:
        server.stop()
        raise
    server.startup_s = time.monotonic() - started
    return server
