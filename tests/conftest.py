"""Shared fixtures. The stack fixes are applied before any test imports mmaction.models."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "data" / "videos"


@pytest.fixture(scope="session")
def mm():
    """Import the MMAction2 side of mats-lab (registers everything, applies the fixes)."""
    from mmengine.registry import init_default_scope

    import mats_lab.mm

    init_default_scope("mmaction")
    return mats_lab.mm


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on 127.0.0.1 for the session (tests/pg_server.py).

    Skips when this machine has no PostgreSQL server programs (see .ci/install-postgres) or
    cannot run them, except under ``CI=true``, where that is a failure: CI must prove the
    several-worker paths, not pass by skipping them. A server that is there but fails to start
    is always an error.
    """
    from ci_guard import require
    from pg_server import PostgresUnavailable, start_postgres

    try:
        server = start_postgres(dbname="optuna")
    except PostgresUnavailable as exc:
        require(False, f"no PostgreSQL server ({exc}); .ci/install-postgres installs one")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server):
    """SQLAlchemy URL of the session's throwaway database,
    ``postgresql+psycopg://postgres@127.0.0.1:PORT/optuna``."""
    return postgres_server.url
