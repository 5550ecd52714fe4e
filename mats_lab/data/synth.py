"""Motion-synth: a generated video dataset whose class is carried by motion only.

Every clip shows a cluttered, static, textured background, a few static distractor shapes, at
most a couple of mildly jittering distractors, and one moving object. The moving object's
shape, colour, size and position are drawn independently of the class; only its motion
(one of eight straight-line directions, grow/shrink, and in the ``large`` preset clockwise /
counter-clockwise circles) is the label. A model looking at one frame therefore learns
nothing, which is the setting where motion-aware token selection should matter.

The ``static`` control renders the same clips with the whole scene frozen at one random frame
of its trajectory (all ``T`` frames identical): a classifier must stay near chance there.

Everything is deterministic from one integer seed: each clip gets its own
``numpy.random.SeedSequence`` (keyed by seed, split and index), never the global
``np.random``. Clips are written as lossless H.264 / yuv420p MP4 files with PyAV (so two
builds decode to the same pixels, see :func:`write_video`), next to MMAction2
``VideoDataset`` annotation lists. :func:`ensure_dataset` builds a folder once, atomically,
even when several processes ask for it at the same moment.

The scene sampling and rendering live in :mod:`mats_lab.data.synth_render` (pure numpy);
this module re-exports them and adds the parameters, the video files and the dataset folders.

Only numpy, PyAV and the standard library are imported here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from filelock import FileLock

from mats_lab.data.synth_render import (
    CLASSES,
    FLIP_LABEL_MAPS,
    SHAPES,
    SPLITS,
    Scene,
    Sprite,
    clip_seed,
    mover_masks,
    mover_track,
    render_clip,
    render_frame,
    render_scene,
    sample_background,
    sample_scene,
)
from mats_lab.data.synth_smooth import sample_smooth_scene

#: ``progress(done, total)``: called after each clip a build writes.
Progress = Callable[[int, int], None]

__all__ = [
    "CLASSES",
    "DEFAULT_ROOT",
    "FLIP_LABEL_MAPS",
    "GENERATOR_VERSION",
    "PRESETS",
    "SHAPES",
    "SPLITS",
    "DatasetMismatchError",
    "Scene",
    "Sprite",
    "STYLES",
    "SynthParams",
    "build_dataset",
    "check_meta",
    "clip_seed",
    "ensure_dataset",
    "mover_masks",
    "mover_track",
    "read_meta",
    "read_video",
    "render_clip",
    "render_frame",
    "render_scene",
    "render_styled_clip",
    "resolve_params",
    "sample_background",
    "sample_scene",
    "static_root",
    "write_video",
]

GENERATOR_VERSION = 3  # 3: lossless H.264 (2: crf 12)

#: What the scenes look like: ``cluttered`` (textured background, sharp striped shapes, a
#: jittering distractor; mats_lab.data.synth_render) or ``smooth`` (a soft background and
#: Gaussian blobs; mats_lab.data.synth_smooth). The motion and the labels are the same.
STYLES = ("cluttered", "smooth")

#: Where ``mats-lab data synth`` and the configs put the dataset (relative to the repository).
DEFAULT_ROOT = "data/motion_synth"


@dataclass(frozen=True)
class SynthParams:
    """Every parameter a dataset folder is built from; ``meta.json`` records all of it."""

    seed: int
    size: str
    static: bool
    num_classes: int
    per_class: tuple[int, int, int]  # clips per class in (train, val, test)
    frames: int  # T
    height: int  # H, even (yuv420p)
    width: int  # W, even
    fps: int
    distractors: tuple[int, int]  # static distractors per clip: [low, high] inclusive
    moving_distractors: int  # class-independent jittering distractors per clip
    style: str = "cluttered"  # one of STYLES: what the scenes look like (not their motion)

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASSES[: self.num_classes]

    def counts(self) -> dict[str, int]:
        """Number of clips per split."""
        return {s: n * self.num_classes for s, n in zip(SPLITS, self.per_class, strict=True)}

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples -> lists, as meta.json stores them


def _preset(
    size: str,
    classes: int,
    per_class: tuple[int, int, int],
    frames: int,
    side: int,
    distractors: tuple[int, int],
    moving: int,
    style: str = "cluttered",
) -> SynthParams:
    """A square, 8 fps, seed-0 motion preset."""
    return SynthParams(
        0, size, False, classes, per_class, frames, side, side, 8, distractors, moving, style
    )


# Size presets (8 fps everywhere). ``default`` is what the tiny training configs use: 10 classes,
# 40/10/10 clips per class, 32 frames of 64x64; it builds in about 7 s on 2 CPU cores. The
# circles (classes 10, 11) need three positions in time to tell apart; only ``large`` has them.
PRESETS: dict[str, SynthParams] = {
    p.size: p
    for p in (
        _preset("tiny", 4, (2, 1, 1), frames=8, side=32, distractors=(2, 3), moving=1),
        _preset("small", 10, (10, 3, 3), frames=16, side=64, distractors=(3, 5), moving=1),
        _preset("default", 10, (40, 10, 10), frames=32, side=64, distractors=(3, 6), moving=1),
        _preset("large", 12, (100, 25, 25), frames=32, side=112, distractors=(4, 8), moving=2),
        # The smooth style (mats_lab.data.synth_smooth): labelled clips for few-label
        # fine-tuning (2 a class) with 50 a class to score on, and 2000 other clips (its own
        # seed in the configs) to pre-train on without labels. 12 frames of 32x32, of which
        # the 8x1x1 pipeline samples 8 consecutive ones.
        _preset("smooth", 10, (2, 50, 50), 12, 32, (2, 2), 0, style="smooth"),
        _preset("smooth-unlabelled", 10, (200, 1, 1), 12, 32, (2, 2), 0, style="smooth"),
    )
}


def resolve_params(
    seed: int = 0,
    size: str = "default",
    static: bool = False,
    *,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    moving_distractors: int | None = None,
) -> SynthParams:
    """The preset ``size`` with the given overrides (``None`` keeps the preset's value)."""
    if size not in PRESETS:
        raise ValueError(f"unknown size preset {size!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[size]

    def pick(value: int | None, default: int) -> int:
        return default if value is None else int(value)

    params = replace(
        preset,
        seed=int(seed),
        static=bool(static),
        frames=pick(frames, preset.frames),
        height=pick(height, preset.height),
        width=pick(width, preset.width),
        moving_distractors=pick(moving_distractors, preset.moving_distractors),
    )
    if params.frames < 2:
        raise ValueError(f"frames must be >= 2 (motion needs two frames), got {params.frames}")
    for name in ("height", "width"):
        value = getattr(params, name)
        if value < 16 or value % 2:
            raise ValueError(f"{name} must be even and >= 16 (H.264 yuv420p), got {value}")
    if params.moving_distractors < 0:
        raise ValueError(f"moving_distractors must be >= 0, got {params.moving_distractors}")
    return params


# --------------------------------------------------------------------------------------------
# Files: H.264 MP4 clips, annotation lists, meta.json; atomic, locked creation.
# --------------------------------------------------------------------------------------------


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int) -> None:
    """Encode ``frames`` ``(T, H, W, 3) uint8`` (RGB, even H and W) as H.264 yuv420p MP4.

    Lossless (``qp 0``): the file decodes to exactly the yuv420p conversion of ``frames``,
    whatever the encoder chooses. That matters: at ``crf 12`` x264 was seen to write a
    different stream for the same frames in about one encode of 60, with one thread, and two
    builds of one seed differed in 6 of 600 files (in the one compared, 22 % of the decoded
    values differed, by up to 20 levels). Lossless costs about 11 % more bytes on these clips.
    """
    num_frames, height, width, _ = frames.shape
    # bitexact keeps library version strings out of the file; one x264 thread is the fastest
    # choice for tiny frames.
    with av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"qp": "0", "preset": "fast", "threads": "1"}
        for t in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frames[t], format="rgb24")
            frame.pts = t
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))  # flush delayed frames


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode a whole video with PyAV. Returns ``(T, H, W, 3) uint8`` RGB."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames)


def render_styled_clip(seed: np.random.SeedSequence, label: int, params: SynthParams) -> np.ndarray:
    """One clip of ``params``' style, size and distractors (the cluttered style draws exactly
    what :func:`render_clip` draws). Returns ``(T, H, W, 3) uint8``."""
    rng = np.random.default_rng(seed)
    shape = (rng, label, params.frames, params.height, params.width)
    if params.style == "smooth":
        scene = sample_smooth_scene(*shape, distractors=params.distractors, static=params.static)
    elif params.style == "cluttered":
        scene = sample_scene(
            *shape,
            distractors=params.distractors,
            moving_distractors=params.moving_distractors,
            static=params.static,
        )
    else:
        raise ValueError(f"unknown style {params.style!r}; choose one of {', '.join(STYLES)}")
    return render_scene(scene)


def build_dataset(
    out: str | os.PathLike, params: SynthParams, progress: Progress | None = None
) -> dict[str, int]:
    """Write the whole dataset into ``out`` (created; must not exist). Not atomic: use
    :func:`ensure_dataset` unless you write into a private folder. Returns clips per split.
    ``progress(done, total)`` is called after every clip written.

    Layout: ``videos/<split>/<split>_NNNNN.mp4``, ``<split>_list_videos.txt`` (lines
    ``videos/<split>/<name>.mp4 <label>``, relative to ``out``), ``classes.txt`` (one name per
    line, line index = label) and ``meta.json``, written last.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=False)
    counts = params.counts()
    total, done = sum(counts.values()), 0
    for split in SPLITS:
        (out / "videos" / split).mkdir(parents=True)
        lines = []
        for index in range(counts[split]):
            # Round-robin labels: every split is balanced, and clip i's content does not
            # depend on how many clips the preset asks for.
            label = index % params.num_classes
            frames = render_styled_clip(clip_seed(params.seed, split, index), label, params)
            relative = f"videos/{split}/{split}_{index:05d}.mp4"
            write_video(out / relative, frames, params.fps)
            lines.append(f"{relative} {label}\n")
            done += 1
            if progress is not None:
                progress(done, total)
        (out / f"{split}_list_videos.txt").write_text("".join(lines))
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in params.classes))
    meta = {
        "generator": __name__,
        "version": GENERATOR_VERSION,
        "params": params.to_json(),
        "classes": list(params.classes),
        "counts": counts,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return counts


class DatasetMismatchError(ValueError):
    """An existing folder holds something other than the dataset asked for."""


def read_meta(root: str | os.PathLike) -> dict | None:
    """The folder's ``meta.json``, or ``None`` when there is none."""
    path = Path(root) / "meta.json"
    return json.loads(path.read_text()) if path.is_file() else None


def check_meta(root: str | os.PathLike, params: SynthParams) -> None:
    """Raise :class:`DatasetMismatchError` unless ``root`` holds exactly ``params``' dataset."""
    root = Path(root)
    meta = read_meta(root)
    if meta is None or meta.get("generator") != __name__:
        raise DatasetMismatchError(
            f"{root} exists but is not a motion-synth dataset (no matching meta.json); "
            "choose another folder"
        )
    wanted = {"version": GENERATOR_VERSION, **params.to_json()}
    # folders written before styles existed are cluttered ones
    found = {"version": meta.get("version"), "style": "cluttered", **meta.get("params", {})}
    diffs = [
        f"{key}: folder has {found.get(key)!r}, asked {value!r}"
        for key, value in wanted.items()
        if found.get(key) != value
    ]
    if diffs:
        raise DatasetMismatchError(
            f"{root} holds a different motion-synth dataset ({'; '.join(diffs)}); "
            "use another folder, or rebuild it with force=True (CLI: --force)"
        )


def static_root(root: str | os.PathLike) -> Path:
    """The conventional folder of the static control of the dataset in ``root``:
    ``<root>-static`` next to it, so both coexist."""
    root = Path(root)
    return root.parent / f"{root.name}-static"


def _lock(root: Path) -> FileLock:
    """Exclusive lock on a sibling lock file, held while a dataset folder is created.

    The lock file is left in place: deleting it would let a waiting process lock a file that a
    newcomer can no longer see.
    """
    return FileLock(root.parent / f".{root.name}.lock")


def ensure_dataset(
    root: str | os.PathLike,
    seed: int = 0,
    size: str = "default",
    static: bool = False,
    *,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    moving_distractors: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Make sure ``root`` holds the dataset these arguments describe, building it if missing.

    - ``root/meta.json`` matches: nothing to do.
    - ``root`` exists with other parameters: :class:`DatasetMismatchError` (a ``ValueError``)
      naming the folder and the differences; with ``force`` a motion-synth folder is rebuilt
      (a folder without our ``meta.json`` is never deleted).
    - missing: built in a temporary sibling folder and renamed into place, under a
      file lock (``filelock``), so concurrent callers build it once and never see half a
      dataset. ``progress(done, total)`` follows the build, clip by clip.

    The static control is a different dataset: give it its own ``root`` (the CLI's default is
    ``<out>-static``). Returns ``Path(root)``.
    """
    params = resolve_params(
        seed,
        size,
        static,
        frames=frames,
        height=height,
        width=width,
        moving_distractors=moving_distractors,
    )
    root = Path(root)
    if (root / "meta.json").is_file() and not force:
        check_meta(root, params)  # fast path: no lock once the folder is complete
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with _lock(root):
        # Someone may have finished while we waited for the lock.
        if root.exists():
            try:
                check_meta(root, params)
                return root
            except DatasetMismatchError:
                if not (force and (read_meta(root) or {}).get("generator") == __name__):
                    raise
        # Only the lock holder builds, so leftovers of killed builds are stale.
        for stale in root.parent.glob(f".{root.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
        try:
            build_dataset(tmp, params, progress)
            if root.exists():  # force: move the old folder aside, then swap
                old = root.parent / f".{root.name}.tmp-old-{os.getpid()}"
                os.rename(root, old)
                os.rename(tmp, root)
                shutil.rmtree(old)
            else:
                os.rename(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root
