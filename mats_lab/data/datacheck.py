"""Check every video of a dataset before training: ``mats-lab data check``.

An annotation list (MMAction2's ``VideoDataset`` format, ``<path> <label...>`` per line) or an
MMEngine config (every ``ann_file`` of its train / val / test dataloaders, with their
``data_prefix``) is expanded into videos, which are checked in parallel processes:

* the stream is probed (:func:`mats_lab.data.probe.probe_video`): missing, empty, not a video
  (``unreadable``), no frames (``zero-frame``), cut short (``truncated``: decoding breaks
  off, an MP4 without its index, or fewer frames decode, or for a shorter time, than the
  container states), a
  decoder that skips or repeats a frame (``frame-identity``);
* ``too-short``: fewer frames than the clip needs (``min_frames``);
* each backend (default ``pyav`` and ``decord``) opens it and returns its first and last
  frame (with ``full``, PyAV decodes and checks every frame: only that finds a frame the
  decoder drops inside a GOP between the two); the backends that do are listed. A video
  PyAV (what ``backend='auto'`` trains with) cannot read is bad;
* ``odd-frame-rate`` is a warning, not a fault: no frame rate, outside 5-120 fps, or frame
  times that vary by more than 10 % (variable frame rate).

The report (JSON) lists every video with its frame count, frame rate, backends, problems and
warnings; :func:`write_clean_list` writes the annotation lines of the good videos only.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mats_lab.data.decode import available_backends, open_video
from mats_lab.data.probe import StreamInfo, VideoDecodeError, probe_video

__all__ = [
    "Entry",
    "VideoCheck",
    "check_video",
    "check_videos",
    "entries_from_config",
    "entries_from_list",
    "default_backends",
    "parse_backends",
    "describe",
    "load_entries",
    "summarise",
    "write_clean_list",
    "write_report",
]

# Frame rates outside this range are reported as odd.
FPS_RANGE = (5.0, 120.0)
# More frames missing than this (container count minus decoded count) is a truncated stream;
# a few can be legitimately absent (MP4 edit lists drop the frames before their start).
TRUNCATION_SLACK = 2
# Likewise for time: the container's stated duration may exceed the frames' by this fraction
# (an audio track that runs on, rounding) before the stream counts as truncated.
TRUNCATION_TIME = 0.25


@dataclass(frozen=True)
class Entry:
    """One line of an annotation list: the video's path, the line as written, its list."""

    path: str
    line: str
    ann_file: str
    min_frames: int = 1


@dataclass
class VideoCheck:
    """What :func:`check_video` found about one video.

    ``problems`` / ``warnings`` hold ``(kind, message)`` pairs; ``backends`` the backends that
    read the video; ``backend_errors`` why the others did not.
    """

    path: str
    ann_file: str
    line: str
    num_frames: int = 0
    fps: float = 0.0
    container_frames: int = 0
    ts_source: str = ""
    backends: list[str] = field(default_factory=list)
    backend_errors: dict[str, str] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problems (warnings allowed)."""
        return not self.problems


# -- what to check ----------------------------------------------------------------------------


def entries_from_list(
    ann_file: str | os.PathLike[str], root: str | os.PathLike[str] | None, min_frames: int = 1
) -> list[Entry]:
    """The videos of an annotation list; relative paths are joined to ``root`` (default: the
    list's folder).

    Raises:
        FileNotFoundError: no such list. ValueError: a list naming no video.
    """
    ann = Path(ann_file)
    if not ann.is_file():
        raise FileNotFoundError(f"{ann}: no such annotation list")
    base = ann.parent if root is None else Path(root)
    entries = []
    for line in ann.read_text().splitlines():
        if not line.strip():
            continue
        name = line.split()[0]
        path = Path(name) if Path(name).is_absolute() else base / name
        entries.append(Entry(str(path), line, str(ann), min_frames))
    if not entries:
        raise ValueError(f"{ann}: the annotation list names no videos")
    return entries


def _sampler_span(pipeline: Iterable[dict]) -> int:
    """Frames one clip of the pipeline's sampler spans (1 when there is no known sampler)."""
    for step in pipeline:
        if step.get("type") in ("SampleFrames", "CandidateSampleFrames"):
            clip_len = int(step.get("clip_len", 1))
            interval = int(step.get("frame_interval", 1))
            return (clip_len - 1) * interval + 1
    return 1


def entries_from_config(config: str | os.PathLike[str]) -> list[Entry]:
    """The videos of every ``ann_file`` in a config's train / val / test dataloaders, each
    with the span of its pipeline's clip as ``min_frames``.

    Raises:
        ValueError: a config without datasets, or a dataset without ``ann_file``.
    """
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    entries: list[Entry] = []
    seen: set[str] = set()
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        loader = cfg.get(key)
        if not loader:
            continue
        dataset = loader.get("dataset", {})
        ann_file = dataset.get("ann_file")
        if not ann_file:
            raise ValueError(f"{config}: {key}.dataset has no ann_file")
        if ann_file in seen:
            continue
        seen.add(ann_file)
        root = (dataset.get("data_prefix") or {}).get("video", "")
        span = _sampler_span(dataset.get("pipeline", []))
        entries += entries_from_list(ann_file, root, span)
    if not entries:
        raise ValueError(f"{config}: no train/val/test dataloader with a dataset")
    return entries


def load_entries(
    source: str | os.PathLike[str], root: str | os.PathLike[str] | None, min_frames: int | None
) -> list[Entry]:
    """The videos of ``source``: a config (``.py``) or an annotation list.

    ``min_frames`` overrides a config's sampler span (default 1 for a list).
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such annotation list or config")
    if source.suffix != ".py":
        return entries_from_list(source, root, min_frames or 1)
    entries = entries_from_config(source)
    if min_frames is not None:
        entries = [replace(e, min_frames=min_frames) for e in entries]
    return entries


def parse_backends(text: str | None) -> tuple[str, ...] | None:
    """``"pyav,opencv"`` -> ``("pyav", "opencv")``; ``None`` -> ``None`` (the default set).

    Raises:
        ValueError: an unknown or uninstalled backend, naming it.
    """
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if name not in available_backends():
            installed = ", ".join(available_backends())
            raise ValueError(f"--backends: {name!r} is not an installed backend ({installed})")
    if not names:
        raise ValueError("--backends names no backend")
    return names


# -- checking one video -----------------------------------------------------------------------


def _frame_rate_warning(info: StreamInfo) -> str | None:
    if info.fps <= 0:
        return "the container states no frame rate"
    if not FPS_RANGE[0] <= info.fps <= FPS_RANGE[1]:
        return f"{info.fps:g} fps is outside {FPS_RANGE[0]:g}-{FPS_RANGE[1]:g} fps"
    times = info.times()
    if times is not None and times.size > 2:
        steps = np.diff(times)
        spread = (steps.max() - steps.min()) / max(float(np.median(steps)), 1e-9)
        if spread > 0.1:
            return (
                f"variable frame rate: frame intervals {steps.min() * 1e3:.1f}-"
                f"{steps.max() * 1e3:.1f} ms"
            )
    return None


def default_backends() -> tuple[str, ...]:
    """The backends checked unless told otherwise: the installed ones a config decodes with
    (``pyav``, ``decord``). OpenCV, which has to decode a video from its start to reach
    the last frame, costs several times more and is checked only when asked for."""
    return tuple(b for b in available_backends() if b != "opencv")


def check_video(
    entry: Entry, backends: tuple[str, ...] | None = None, full: bool = False
) -> VideoCheck:
    """Check one video (see the module docstring) with ``backends`` (default:
    :func:`default_backends`). Never raises for a bad video."""
    result = VideoCheck(path=entry.path, ann_file=entry.ann_file, line=entry.line)
    try:
        info = probe_video(entry.path)
    except VideoDecodeError as err:
        result.problems.append((err.kind, str(err)))
        return result
    result.num_frames = info.num_frames
    result.fps = info.fps
    result.container_frames = info.container_frames
    result.ts_source = info.ts_source
    if info.container_frames > info.num_frames + TRUNCATION_SLACK:
        result.problems.append(
            (
                "truncated",
                f"{entry.path}: the container states {info.container_frames} frames but "
                f"only {info.num_frames} decode",
            )
        )
    decoded_s = info.duration_s()
    if decoded_s > 0 and info.container_duration_s > decoded_s * (1 + TRUNCATION_TIME):
        result.problems.append(
            (
                "truncated",
                f"{entry.path}: the container states {info.container_duration_s:.2f} s but "
                f"the frames that decode last {decoded_s:.2f} s",
            )
        )
    if info.num_frames < entry.min_frames:
        result.problems.append(
            (
                "too-short",
                f"{entry.path}: {info.num_frames} frames, a clip needs {entry.min_frames}",
            )
        )
    warning = _frame_rate_warning(info)
    if warning:
        result.warnings.append(("odd-frame-rate", f"{entry.path}: {warning}"))
    pyav_kind = ""
    for backend in default_backends() if backends is None else backends:
        wanted = range(info.num_frames) if full and backend == "pyav" else [0, info.num_frames - 1]
        try:
            with open_video(entry.path, backend, info=info) as reader:
                reader.get_frames(list(wanted))
        except (VideoDecodeError, ImportError) as err:
            result.backend_errors[backend] = str(err)
            pyav_kind = getattr(err, "kind", "decoder") if backend == "pyav" else pyav_kind
        else:
            result.backends.append(backend)
    if pyav_kind:
        result.problems.append((pyav_kind, result.backend_errors["pyav"]))
    return result


def _check_one(args: tuple[Entry, tuple[str, ...] | None, bool]) -> VideoCheck:
    return check_video(*args)


def check_videos(
    entries: list[Entry],
    jobs: int | None = None,
    backends: tuple[str, ...] | None = None,
    full: bool = False,
    on_done: Callable[[VideoCheck], None] | None = None,
) -> list[VideoCheck]:
    """Check ``entries`` in ``jobs`` processes (default: the CPU count), in list order;
    ``on_done`` is called as each finishes (for a progress bar)."""
    jobs = jobs or os.cpu_count() or 1
    work = [(entry, backends, full) for entry in entries]
    results: list[VideoCheck] = []
    if jobs == 1:
        for item in work:
            results.append(_check_one(item))
            if on_done:
                on_done(results[-1])
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(_check_one, work, chunksize=4):
            results.append(result)
            if on_done:
                on_done(result)
    return results


# -- reporting --------------------------------------------------------------------------------


def summarise(results: list[VideoCheck]) -> dict[str, object]:
    """Counts: videos, bad videos, problems and warnings by kind, readers per backend."""
    return {
        "videos": len(results),
        "bad": sum(not r.ok for r in results),
        "problems": dict(Counter(kind for r in results for kind, _ in r.problems)),
        "warnings": dict(Counter(kind for r in results for kind, _ in r.warnings)),
        "read_by": dict(Counter(b for r in results for b in r.backends)),
    }


def describe(results: list[VideoCheck], seconds: float) -> list[str]:
    """Lines for a terminal: each bad video with its reasons, warnings, then the totals."""
    lines = []
    for r in results:
        for kind, message in r.problems:
            lines.append(f"BAD  {kind:15s} {message}")
    for r in results:
        for kind, message in r.warnings:
            lines.append(f"warn {kind:15s} {message}")
    summary = summarise(results)
    rate = len(results) / seconds if seconds > 0 else float("inf")
    read_by = Counter(b for r in results for b in r.backends)
    readers = ", ".join(f"{b} {n}" for b, n in sorted(read_by.items()))
    lines.append(
        f"checked    {len(results)} videos, {summary['bad']} bad, in {seconds:.1f} s "
        f"({rate:.1f} files/s)"
    )
    lines.append(f"read by    {readers or 'no backend'}")
    return lines


def write_report(results: list[VideoCheck], path: str | os.PathLike[str], **extra: object) -> None:
    """Write the JSON report: ``summary``, ``extra`` fields and one record per video."""
    report = {"summary": summarise(results), **extra, "videos": [asdict(r) for r in results]}
    Path(path).write_text(json.dumps(report, indent=1) + "\n")


def write_clean_list(results: list[VideoCheck], path: str | os.PathLike[str]) -> int:
    """Write the annotation lines of the good videos (original order) to ``path``.

    Raises:
        ValueError: the results come from more than one annotation list.
    """
    lists = sorted({r.ann_file for r in results})
    if len(lists) > 1:
        raise ValueError(
            f"--write-clean writes one list, but the videos come from {len(lists)}: "
            f"{', '.join(lists)}; check each list on its own"
        )
    good = [r.line for r in results if r.ok]
    Path(path).write_text("".join(line + "\n" for line in good))
    return len(good)
