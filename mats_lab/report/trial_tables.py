"""Trial tables: a study's report from ``trials.csv`` files (what every report writes beside its
tables) instead of its stores, and several runs of one study pooled into one table.

``mats-lab report STUDY.yaml --trials A/trials.csv --trials B/trials.csv`` re-summarises
committed results without their Optuna and MLflow stores (another ``--alpha``, another
baseline), and pools runs made apart (seeds 0-2 on one machine, 3-5 on another) into the
study's report over all their seeds. The study file names the study, its variables, stages and
baseline; the tables give the rows.

Pooling refuses what would fake replication or mix studies: a table without the trial
columns, a variable the study has that a table lacks, a complete (configuration, seed) found in
two tables (a seed counts once; pool different seed sets), a seed or a value the study file
does not list. Trial numbers are renumbered in table order (the ``study`` column keeps each
row's origin); the tables carry no per-epoch history, so such a report has no training curves.

Pure pandas; only :mod:`mats_lab.report.stores` for the tidy frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mats_lab.report.stores import TRIAL_COLUMNS, tidy, typed

__all__ = ["TRIALS_FILE", "TrialTableError", "pool", "read_table", "table_path"]

TRIALS_FILE = "trials.csv"
_NEEDED = ("study", "trial", "state", "seed")


class TrialTableError(ValueError):
    """A trial table that cannot be read or pooled; the message names the file."""


def table_path(path: Path) -> Path:
    """``path`` itself, or ``path/trials.csv`` for a report folder."""
    return path / TRIALS_FILE if path.is_dir() else path


def read_table(path: Path) -> pd.DataFrame:
    """One ``trials.csv`` (or a report folder holding one) as the tidy trial frame."""
    path = table_path(path)
    if not path.is_file():
        raise TrialTableError(f"{path}: no such trial table (a report folder's {TRIALS_FILE})")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TrialTableError(f"{path}: not a readable CSV ({exc})") from None
    lacking = [c for c in _NEEDED if c not in raw.columns]
    if lacking:
        raise TrialTableError(
            f"{path}: not a trial table, it lacks the column(s) {', '.join(lacking)}"
        )
    rows: list[dict[str, Any]] = []
    for number, record in enumerate(raw.to_dict("records"), start=2):  # line 1: the header
        row: dict[str, Any] = {}
        for column, text in record.items():
            if column.startswith("params."):
                row[column] = typed(text) if text != "" else None
            elif column.startswith("metrics."):
                row[column] = _number(text, path, number, column)
            elif column in TRIAL_COLUMNS:
                row[column] = text
        try:
            row["trial"] = int(record["trial"])
        except ValueError:
            raise TrialTableError(
                f"{path}, line {number}: trial {record['trial']!r} is not a number"
            ) from None
        rows.append(row)
    return tidy(rows)


def _number(text: str, path: Path, line: int, column: str) -> float:
    if text == "":
        return float("nan")
    try:
        return float(text)
    except ValueError:
        raise TrialTableError(f"{path}, line {line}: {column} {text!r} is not a number") from None


def pool(
    tables: list[tuple[Path, pd.DataFrame]],
    variables: list[str],
    seeds: list[int] | None = None,
    values: dict[str, list[Any]] | None = None,
) -> pd.DataFrame:
    """The tables as one trial frame, trials renumbered in order.

    ``variables``: the study's variables, each a ``params.<name>`` column of every table.
    ``seeds`` / ``values``: what the study file lists (None: not checked); a complete row with
    another seed or value is refused, so a table of another study cannot slip in."""
    if not tables:
        raise TrialTableError("no trial table given")
    frames: list[pd.DataFrame] = []
    owner: dict[tuple, Path] = {}
    offset = 0
    for path, frame in tables:
        lacking = [v for v in variables if f"params.{v}" not in frame.columns]
        if lacking:
            raise TrialTableError(
                f"{path}: no column for the study's variable(s) {', '.join(lacking)}: "
                "a table of another study?"
            )
        done = frame[frame["state"] == "COMPLETE"]
        for _, row in done.iterrows():
            point = tuple(_plain(row[f"params.{v}"]) for v in variables)
            seed = None if pd.isna(row["seed"]) else int(row["seed"])
            where = f"{path}, trial {int(row['trial'])}"
            if seeds is not None and seed not in seeds:
                raise TrialTableError(
                    f"{where}: seed {seed} is not among the study file's seeds {seeds}"
                )
            for name, value in zip(variables, point, strict=True):
                allowed = (values or {}).get(name)
                if allowed is not None and value not in allowed:
                    raise TrialTableError(
                        f"{where}: {name}={value!r} is not in the study file's grid {allowed}"
                    )
            key = (point, seed)
            if key in owner:
                label = ", ".join(f"{v}={p}" for v, p in zip(variables, point, strict=True))
                raise TrialTableError(
                    f"{where}: configuration {label} with seed {seed} is also complete in "
                    f"{owner[key]}: pool runs with different seeds (a seed counts once)"
                )
            owner[key] = path
        frame = frame.assign(trial=frame["trial"] + offset)
        for name, allowed in (values or {}).items():  # 1 read back as the grid's 1.0
            if f"params.{name}" in frame.columns:
                column = frame[f"params.{name}"]
                frame[f"params.{name}"] = [_as_listed(v, allowed) for v in column]
        frames.append(frame)
        offset = int(frame["trial"].max()) + 1 if len(frame) else offset  # already shifted
    return tidy(pd.concat(frames, ignore_index=True).to_dict("records"))


def _as_listed(value: Any, allowed: list[Any]) -> Any:
    """The study file's spelling of a value equal to one it lists (``1`` -> ``1.0``)."""
    value = _plain(value)
    return next((a for a in allowed if a == value and type(a) is not bool), value)


def _plain(value: Any) -> Any:
    """A cell as a plain Python value (numpy scalars compared with the study file's)."""
    return value.item() if hasattr(value, "item") else value
