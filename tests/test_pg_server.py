"""The throwaway PostgreSQL server (tests/pg_server.py) as Optuna's shared study storage."""

from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (Linux /proc/net/tcp{,6})."""
    addresses = set()
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) != port or fields[3] != "0A":  # 0A: TCP_LISTEN
                continue
            raw = bytes.fromhex(address)
            if family == 4:
                addresses.add(".".join(str(b) for b in raw[::-1]))
            else:  # four little-endian 32-bit words
                words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
                addresses.add(":".join(b"".join(words).hex()[i : i + 4] for i in range(0, 32, 4)))
    return addresses


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    return (x - 1.0) ** 2


def test_server_listens_on_loopback_only(postgres_server):
    assert _listening_addresses(postgres_server.port) == {"127.0.0.1"}
    engine = sa.create_engine(postgres_server.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW listen_addresses")).scalar() == "127.0.0.1"
            assert conn.execute(sa.text("SHOW fsync")).scalar() == "off"
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "optuna"
    finally:
        engine.dispose()


def test_two_storages_share_one_study(postgres_server, postgres_url):
    """Two RDBStorage instances (separate engines, as two workers have) share one study; the
    second one uses a plain postgresql:// URL, which SQLAlchemy 2.1 gives to psycopg 3."""
    assert postgres_url.startswith("postgresql+psycopg://")
    first = optuna.storages.RDBStorage(postgres_url)
    second = optuna.storages.RDBStorage(postgres_server.plain_url)
    try:
        assert first.engine.dialect.driver == second.engine.dialect.driver == "psycopg"
        study = optuna.create_study(study_name="shared", storage=first)
        study.optimize(_objective, n_trials=3)

        other = optuna.load_study(study_name="shared", storage=second)
        assert len(other.trials) == 3
        other.optimize(_objective, n_trials=2)

        trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert len(trials) == 5
        for trial in trials:
            assert trial.value == pytest.approx((trial.params["x"] - 1.0) ** 2)
        assert study.best_value == min(trial.value for trial in trials)
    finally:
        first.engine.dispose()
        second.engine.dispose()
