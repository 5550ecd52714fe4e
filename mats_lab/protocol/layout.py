"""Where a study keeps its things on disk.

A study folder (default ``<study file dir>/runs/<file stem>``) holds::

    optuna.journal        the Optuna study (default storage)
    mlflow.db, mlartifacts/   the MLflow store (default tracking)
    .sweep.lock           held by the sweep that runs the study
    stages/<stage key>/   one work dir per stage (see StageFiles)
    stages/by-config/<config hash>  -> the finished stage that trained that resolved config

A shared stage store (``--stage-store`` / the study's ``stage_store``) holds the same
``stages/`` tree on a filesystem every worker mounts; ``.stage-locks/<stage key>.lock`` (there
and in a study folder) is held by the worker whose stage runs in that work dir.

The repository root (where ``mm_configs/`` lives) is found from the study file, so stage
configs are named relative to it.

Only the standard library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "JOURNAL_FILE",
    "MLFLOW_DB_FILE",
    "StageFiles",
    "default_storage",
    "default_tracking",
    "find_root",
    "journal_path",
    "stage_dir",
    "adopt_stage",
    "relocated",
    "stage_lock",
    "stage_root",
    "study_folder",
]


#: File names of the default stores in a study folder.
JOURNAL_FILE = "optuna.journal"
MLFLOW_DB_FILE = "mlflow.db"


def find_root(study_file: Path) -> Path:
    """The repository holding ``study_file`` (the nearest folder with ``mm_configs/``), else
    the current directory."""
    base = study_file.resolve().parent
    root = base
    while root != root.parent and not (root / "mm_configs").is_dir():
        root = root.parent
    return root if (root / "mm_configs").is_dir() else Path.cwd()


def study_folder(study_file: Path, output: str | None) -> Path:
    """The study folder: ``output`` (relative to the study file) or ``runs/<stem>`` beside it."""
    base = study_file.resolve().parent
    folder = Path(output) if output else base / "runs" / study_file.stem
    folder = folder if folder.is_absolute() else base / folder
    return folder.resolve()


def default_storage(folder: Path) -> str:
    """The Optuna storage URL of a study folder: a journal file (safe for one asker)."""
    return f"journal://{folder / JOURNAL_FILE}"


def journal_path(url: str) -> Path | None:
    """The journal file of a ``journal:///path`` storage URL (None for a database URL)."""
    return Path(url.removeprefix("journal://")) if url.startswith("journal://") else None


def default_tracking(folder: Path) -> str:
    """The MLflow tracking URI of a study folder: a SQLite file (artifacts in mlartifacts/)."""
    return f"sqlite:///{folder / MLFLOW_DB_FILE}"


def stage_dir(folder: Path, key: str) -> Path:
    """The work dir of the stage with ``key`` in a study folder."""
    return folder / "stages" / key


def adopt_stage(folder: Path, old: str, new: str) -> bool:
    """Rename the stage work dir ``old`` of a study folder (or stage store) to ``new`` when only
    the old one exists: a stage stored under its key from before keys were portable. True when
    renamed; False when there is nothing to adopt or another process took it first."""
    source, target = stage_dir(folder, old), stage_dir(folder, new)
    if target.exists() or not source.is_dir():
        return False
    try:
        source.rename(target)
    except OSError:  # renamed (or removed) by another worker in between
        return False
    return True


def relocated(path: str | None, work_dir: Path) -> str | None:
    """A file a stage recorded by absolute path (its checkpoint) after its work dir moved (a
    stage store mounted elsewhere, an adopted stage): the file of the same name in
    ``work_dir`` when the recorded one is gone; else ``path`` as it is."""
    if not path or Path(path).exists():
        return path
    moved = work_dir / Path(path).name
    return str(moved) if moved.is_file() else path


def stage_lock(folder: Path, key: str) -> Path:
    """The lock file of the stage with ``key`` (held while a worker runs it)."""
    return folder / ".stage-locks" / f"{key}.lock"


def stage_root(study_file: Path, folder: Path, store: str | None) -> Path:
    """Where stage work dirs live: the shared ``store`` (relative to the study file), else
    the study ``folder``."""
    if not store:
        return folder
    path = Path(store).expanduser()
    path = path if path.is_absolute() else study_file.resolve().parent / path
    return path.resolve()


@dataclass(frozen=True)
class StageFiles:
    """The files of one stage work dir."""

    work_dir: Path

    @property
    def spec(self) -> Path:
        """``stage.json``: the :class:`~mats_lab.protocol.records.StageSpec` the sweep wrote."""
        return self.work_dir / "stage.json"

    @property
    def result(self) -> Path:
        """``result.json``: the :class:`~mats_lab.protocol.records.StageResult`, once done."""
        return self.work_dir / "result.json"

    @property
    def progress(self) -> Path:
        """``progress.jsonl``: one :mod:`~mats_lab.protocol.records` progress line per event."""
        return self.work_dir / "progress.jsonl"

    @property
    def log(self) -> Path:
        """``stage.log``: the stage process's stdout and stderr (every run appended)."""
        return self.work_dir / "stage.log"

    @property
    def config(self) -> Path:
        """``config.py``: the resolved config, which plain ``tools/train.py`` runs again."""
        return self.work_dir / "config.py"

    @property
    def resolved(self) -> Path:
        """``resolved.json``: the config hash and what each knob changed."""
        return self.work_dir / "resolved.json"

    @property
    def last_checkpoint(self) -> Path:
        """MMEngine's ``last_checkpoint`` marker: the path of the newest checkpoint."""
        return self.work_dir / "last_checkpoint"

    def checkpoint(self) -> str | None:
        """The newest checkpoint named by the marker, when that file exists."""
        if self.last_checkpoint.is_file():
            path = relocated(self.last_checkpoint.read_text().strip(), self.work_dir)
            if path and Path(path).is_file():
                return path
        return None
