"""Where a study's results are stored: from a study file, a study folder or a name to the
Optuna storage URL and the MLflow tracking URI; and every study of the local store.

A sweep keeps a study's stores in its study folder (``<file dir>/runs/<file stem>/`` unless
the study file says otherwise): ``optuna.journal`` and ``mlflow.db``. The local store is every
study file under ``studies/`` whose folder holds one of them, plus any study folder
``studies/**/runs/<name>/`` whose study file is gone.

Only the standard library and :mod:`mats_lab.protocol` (no Optuna, no MLflow) are imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mats_lab.protocol.layout import (
    JOURNAL_FILE,
    MLFLOW_DB_FILE,
    default_storage,
    default_tracking,
)
from mats_lab.protocol.spec import load_study, study_paths

__all__ = ["StudySource", "SourceError", "discover", "resolve"]

JOURNAL = JOURNAL_FILE
MLFLOW_DB = MLFLOW_DB_FILE


class SourceError(ValueError):
    """A study argument that names no study."""


@dataclass(frozen=True)
class StudySource:
    """Where one study lives. ``name`` may be None for a folder whose journal names it."""

    name: str | None
    study_file: Path | None = None
    folder: Path | None = None  # the study folder (stage work dirs, default stores)
    root: Path | None = None  # repository root (for the token picture's data and configs)
    storage_url: str | None = None
    tracking_uri: str | None = None
    baseline: str | None = None  # the study file's ``baseline``

    @property
    def label(self) -> str:
        return self.name or (self.folder.name if self.folder else "study")


def _has_store(folder: Path) -> bool:
    return (folder / JOURNAL).is_file() or (folder / MLFLOW_DB).is_file()


def from_file(path: Path) -> StudySource:
    """The source of a study file (``studies/<name>.yaml``)."""
    spec = load_study(path)  # StudyError (a ValueError) names the file and the key
    folder, root = study_paths(spec, path)
    return StudySource(
        name=spec.name,
        study_file=path,
        folder=folder,
        root=root,
        storage_url=spec.storage or default_storage(folder),
        tracking_uri=spec.tracking_uri or default_tracking(folder),
        baseline=spec.baseline,
    )


def from_folder(folder: Path) -> StudySource:
    """The source of a study folder holding ``optuna.journal`` and/or ``mlflow.db``."""
    folder = folder.resolve()
    root = folder
    while root != root.parent and not (root / "mm_configs").is_dir():
        root = root.parent
    journal, db = folder / JOURNAL, folder / MLFLOW_DB
    return StudySource(
        name=None,
        folder=folder,
        root=root if (root / "mm_configs").is_dir() else None,
        storage_url=f"journal://{journal}" if journal.is_file() else None,
        tracking_uri=f"sqlite:///{db}" if db.is_file() else None,
    )


def _study_files(studies: Path) -> list[Path]:
    return sorted(p for p in studies.rglob("*.yaml") if "runs" not in p.relative_to(studies).parts)


def discover(base: Path) -> list[StudySource]:
    """Every study with stored results under ``base/studies`` (files first, then orphans)."""
    studies = base / "studies"
    if not studies.is_dir():
        return []
    found: list[StudySource] = []
    folders: set[Path] = set()
    for path in _study_files(studies):
        try:
            source = from_file(path)
        except ValueError:
            continue  # a broken study file has no results to report
        if source.folder is not None and _has_store(source.folder):
            found.append(source)
            folders.add(source.folder)
    for journal in sorted(studies.glob(f"**/runs/*/{JOURNAL}")):
        if journal.parent.resolve() not in folders:
            found.append(from_folder(journal.parent))
    return found


def resolve(argument: str, base: Path) -> StudySource:
    """A study file, a study folder, or a study name known to the local store."""
    path = Path(argument)
    if path.is_file():
        return from_file(path)
    if path.is_dir():
        if not _has_store(path):
            raise SourceError(f"{path}: no {JOURNAL} or {MLFLOW_DB} in this folder")
        return from_folder(path)
    for source in discover(base):
        stem = source.study_file.stem if source.study_file else None
        if argument in (source.name, stem, source.folder.name if source.folder else None):
            return source
    for candidate in (base / "studies" / f"{argument}.yaml", base / "studies" / argument):
        if candidate.is_file():
            return from_file(candidate)
    raise SourceError(
        f"{argument}: not a study file, a study folder or the name of a study with results "
        f"under {base / 'studies'}"
    )
