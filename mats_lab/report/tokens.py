"""The token-selection picture of the best trial: ``mats-lab show-tokens`` on one clip, with
the trial's fine-tuning config (dumped in its stage work dir) and last checkpoint, run in a
subprocess so the report itself never imports torch.

The best trial is the COMPLETE trial with the highest main accuracy within the configuration
with the best mean. The clip, unless one is given, is the first of the validation list named in
the trial's dumped config, else of the embedded dataset's (``data/motion_synth/``).
When anything is missing (no stage dir, a trial command that writes no config, no clip,
show-tokens failing) the picture is skipped with a note saying why.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mats_lab.protocol.layout import StageFiles
from mats_lab.protocol.records import RecordError, read_result
from mats_lab.report.collect import StudyData
from mats_lab.report.summarise import Summary

__all__ = [
    "EMBEDDED_VAL",
    "TokenUnavailable",
    "best_trial",
    "default_clip",
    "token_command",
    "token_picture",
]

EMBEDDED_VAL = Path("data") / "motion_synth" / "val_list_videos.txt"
TIMEOUT_S = 600


class TokenUnavailable(RuntimeError):
    """The picture cannot be made; the message says why."""


def best_trial(data: StudyData, summary: Summary) -> int | None:
    """The best configuration's best COMPLETE trial (main accuracy), or None."""
    if not summary.primary or summary.table.empty:
        return None
    means = summary.table[f"{summary.primary}.mean"]
    if means.notna().sum() == 0:
        return None
    best_label = str(means.idxmax())
    from mats_lab.report.summarise import config_labels

    trials = data.trials
    labels = config_labels(trials, data.variables)
    metric = next(c.metric for c in summary.columns if c.key == summary.primary)
    mine = trials[(labels == best_label) & (trials["state"] == "COMPLETE")]
    mine = mine[mine[metric].notna()]
    if mine.empty:
        return None
    return int(mine.loc[mine[metric].idxmax(), "trial"])


def _section(text: str, name: str) -> str:
    """The ``name = dict(...)`` assignment of a dumped MMEngine config (up to the next one)."""
    match = re.search(rf"^{name} = ", text, re.M)
    if match is None:
        return ""
    end = re.search(r"^[A-Za-z_]\w* = ", text[match.end() :], re.M)
    return text[match.end() : match.end() + end.start()] if end else text[match.end() :]


def _first_listed(listing: Path, prefixes: list[Path]) -> Path | None:
    """The first clip of a video list, under one of ``prefixes`` (or the list's folder)."""
    for line in listing.read_text().splitlines():
        if line.strip():
            entry = line.split()[0]
            for prefix in [*prefixes, listing.parent]:
                if (prefix / entry).is_file():
                    return prefix / entry
            return None
    return None


def default_clip(root: Path, config: Path | None = None) -> Path:
    """The first clip of the config's validation list (paths in the dumped config, relative
    ones from ``root``), else of the embedded dataset's under ``root``."""
    listings: list[tuple[Path, list[Path]]] = []
    if config is not None and config.is_file():
        section = _section(config.read_text(), "val_dataloader")
        anns = re.findall(r"ann_file=\s*'([^']+)'", section)
        videos = re.findall(r"video=\s*'([^']+)'", section)
        listings += [(root / a, [root / v for v in videos]) for a in anns]
    listings.append((root / EMBEDDED_VAL, []))
    for listing, prefixes in listings:
        if listing.is_file():
            clip = _first_listed(listing, prefixes)
            if clip is not None:
                return clip
    raise TokenUnavailable(
        f"no clip given, and none found from the config's validation list or {root / EMBEDDED_VAL}"
    )


def _stage_files(data: StudyData, trial: int) -> tuple[Path, Path]:
    """``(config, checkpoint)`` of the trial's last stage."""
    stages = data.stages.get(trial) or []
    if not stages:
        raise TokenUnavailable(
            f"trial {trial}: its stage work dirs are unknown (no Optuna storage)"
        )
    work_dir = Path(stages[-1].get("work_dir", ""))
    try:
        result = read_result(work_dir)
    except RecordError as exc:
        raise TokenUnavailable(f"trial {trial}: {exc}") from None
    if result is None:
        raise TokenUnavailable(f"trial {trial}: no readable result.json in {work_dir}")
    config = Path(result.config or StageFiles(work_dir).config)
    checkpoint = result.checkpoint
    if not config.is_file():
        raise TokenUnavailable(f"trial {trial}: no dumped config in {work_dir} (a fake trial?)")
    if not checkpoint or not Path(checkpoint).is_file():
        raise TokenUnavailable(f"trial {trial}: its checkpoint {checkpoint} does not exist")
    if Path(checkpoint).suffix != ".pth":
        raise TokenUnavailable(f"trial {trial}: {checkpoint} is not a model checkpoint")
    return config, Path(checkpoint)


def token_command(
    data: StudyData, trial: int, out: Path, clip: Path | None = None
) -> tuple[list[str], Path]:
    """``(argv, working dir)`` of the show-tokens run for ``trial`` writing ``out`` (PNG)
    and ``out`` with ``.json``; TokenUnavailable when it cannot run."""
    root = data.root or Path.cwd()
    config, checkpoint = _stage_files(data, trial)
    clip = clip if clip is not None else default_clip(root, config)
    # Paths inside the repository are given relative to it (the show-tokens process runs
    # there), so the tokens.json a report commits names no machine's folders.
    argv = [
        sys.executable, "-m", "mats_lab.cli.main", "show-tokens", _shown(clip, root),
        "--config", _shown(config, root), "--checkpoint", _shown(checkpoint, root),
        "--out", str(out.resolve()), "--json", str(out.with_suffix(".json").resolve()),
    ]  # fmt: skip
    return argv, root


def _shown(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside it (normalised), else absolute."""
    full = Path(os.path.normpath(Path(path).resolve()))
    return (
        str(full.relative_to(root.resolve())) if full.is_relative_to(root.resolve()) else str(full)
    )


def token_picture(
    data: StudyData,
    summary: Summary,
    out: Path,
    clip: Path | None = None,
    run: Callable[..., Any] = subprocess.run,
) -> tuple[Path | None, str]:
    """``(picture, note)``: the picture of the best trial, or None and why not."""
    trial = best_trial(data, summary)
    if trial is None:
        return None, "no completed trial to draw"
    try:
        argv, cwd = token_command(data, trial, out, clip)
    except TokenUnavailable as exc:
        return None, str(exc)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"show-tokens did not finish: {exc}"
    if done.returncode != 0 or not out.is_file():
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        return (
            None,
            f"show-tokens failed ({done.returncode}): {lines[-1] if lines else 'no output'}",
        )
    return out, f"trial {trial} on {Path(argv[4]).name}"
