"""A decoded-clip cache for the embedded motion-synth dataset: every clip decoded once (checked
PyAV decoding), kept as one ``uint8`` array next to the dataset and read back by memory map.

The embedded clips are tiny (600 clips of ``T=32`` frames of ``64x64``: 236 MB decoded) and were
decoded from H.264 again in every epoch by dataloader workers that compete with the model for
the same cores. The cache holds exactly the pixels :func:`mats_lab.data.decode.open_video`
returns (the test suite compares every frame), so reading it instead changes nothing but the
time.

Layout, inside the dataset folder::

    <root>/decoded-v1/frames.npy   (N, T, H, W, 3) uint8, one row per video
    <root>/decoded-v1/index.json   version, key, the videos (row order), T, H, W, fps

The ``key`` is a SHA-256 over the dataset's ``meta.json`` and every video's relative path,
size and modification time: a dataset rebuilt or a video replaced no longer matches, and
:func:`ensure_clip_cache` builds the cache again (:meth:`ClipCache.open` refuses a stale one).
The build runs under a file lock, in a temporary folder renamed into place, so concurrent
stages build it once and never read half a cache; readers (several dataloader workers, several
stages) share the mapped file through the page cache.

Only for datasets whose videos all have one shape (the generator's); real datasets keep
checked decoding from the files. Only numpy, PyAV (through :mod:`mats_lab.data.decode`) and
the standard library are imported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
from filelock import FileLock

from mats_lab.data.decode import VideoReader, open_video
from mats_lab.data.probe import StreamInfo, VideoDecodeError

__all__ = [
    "CACHE_DIR",
    "CACHE_VERSION",
    "CachedClipReader",
    "ClipCache",
    "StaleCacheError",
    "cache_key",
    "ensure_clip_cache",
    "list_videos",
]

CACHE_VERSION = 1
CACHE_DIR = f"decoded-v{CACHE_VERSION}"
#: The annotation lists whose videos the cache holds.
LISTS = ("train_list_videos.txt", "val_list_videos.txt", "test_list_videos.txt")

#: ``progress(done, total)``: called after each clip a build decodes.
Progress = Callable[[int, int], None]


class StaleCacheError(RuntimeError):
    """The cache does not belong to the dataset folder as it is now."""


def list_videos(root: str | os.PathLike) -> list[str]:
    """The videos of ``root``'s annotation lists, relative to ``root``, sorted, unique."""
    root = Path(root)
    names: set[str] = set()
    for name in LISTS:
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: annotation list missing (not a dataset folder?)")
        for line in path.read_text().splitlines():
            if line.strip():
                names.add(line.split()[0])
    if not names:
        raise ValueError(f"{root}: the annotation lists name no video")
    return sorted(names)


def cache_key(root: str | os.PathLike, videos: list[str]) -> str:
    """SHA-256 over ``meta.json`` and each video's path, size and modification time."""
    root = Path(root)
    meta = root / "meta.json"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta}: missing; the clip cache is keyed by the dataset's meta")
    digest = hashlib.sha256(meta.read_bytes())
    for rel in videos:
        stat = (root / rel).stat()
        digest.update(f"\0{rel}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _read_index(folder: Path) -> dict | None:
    path = folder / "index.json"
    if not path.is_file():
        return None
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return index if isinstance(index, dict) else None


def _build(
    root: Path, folder: Path, videos: list[str], key: str, progress: Progress | None
) -> None:
    """Decode every video (checked PyAV) into ``folder/frames.npy``; write ``index.json``."""
    first = open_video(root / videos[0], "pyav")
    try:
        frames_per_video, height, width, fps = (
            first.num_frames,
            first.info.height,
            first.info.width,
            first.fps,
        )
    finally:
        first.close()
    shape = (len(videos), frames_per_video, height, width, 3)
    frames = np.lib.format.open_memmap(
        folder / "frames.npy", mode="w+", dtype=np.uint8, shape=shape
    )
    for row, rel in enumerate(videos):
        reader = open_video(root / rel, "pyav")
        try:
            if reader.num_frames != frames_per_video:
                raise VideoDecodeError(
                    f"{root / rel}: {reader.num_frames} frames, the cache needs every video of "
                    f"{root} to have {frames_per_video} (the first one's count)"
                )
            clip = reader.get_frames(np.arange(frames_per_video))  # (T, H, W, 3) uint8
        finally:
            reader.close()
        if clip.shape[1:] != shape[2:]:
            raise VideoDecodeError(
                f"{root / rel}: frames of {clip.shape[1:]}, the cache needs {shape[2:]}"
            )
        frames[row] = clip
        if progress is not None:
            progress(row + 1, len(videos))
    frames.flush()
    del frames
    index = {
        "version": CACHE_VERSION,
        "key": key,
        "videos": videos,
        "frames": frames_per_video,
        "height": height,
        "width": width,
        "fps": fps,
        "backend": "pyav",
    }
    (folder / "index.json").write_text(json.dumps(index, indent=1) + "\n")


def ensure_clip_cache(root: str | os.PathLike, progress: Progress | None = None) -> Path:
    """Make sure ``root/decoded-v1`` holds the decoded clips of the dataset in ``root`` as it is
    now, building (or rebuilding) it under a file lock; returns the cache folder."""
    root = Path(root)
    videos = list_videos(root)
    key = cache_key(root, videos)
    folder = root / CACHE_DIR
    index = _read_index(folder)
    if index is not None and index.get("key") == key and index.get("version") == CACHE_VERSION:
        return folder  # fast path: no lock once the cache is complete and current
    with FileLock(root / f".{CACHE_DIR}.lock"):
        index = _read_index(folder)
        if index is not None and index.get("key") == key and index.get("version") == CACHE_VERSION:
            return folder  # another process built it while we waited
        for stale in root.glob(f".{CACHE_DIR}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # only the lock holder builds
        tmp = root / f".{CACHE_DIR}.tmp-{os.getpid()}"
        tmp.mkdir()
        try:
            _build(root, tmp, videos, key, progress)
            if folder.exists():
                old = root / f".{CACHE_DIR}.tmp-old-{os.getpid()}"
                os.rename(folder, old)
                os.rename(tmp, folder)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


class ClipCache:
    """A built cache, opened read-only: ``rows`` maps each video's resolved path to its row.

    Raises:
        StaleCacheError: no cache in ``folder``, another version, or its key no longer matches
            the dataset folder above it (run :func:`ensure_clip_cache`).
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        root = self.folder.parent
        index = _read_index(self.folder)
        if index is None or index.get("version") != CACHE_VERSION:
            raise StaleCacheError(f"{self.folder}: no clip cache of version {CACHE_VERSION}")
        videos = list(index["videos"])
        if index.get("key") != cache_key(root, videos) or videos != list_videos(root):
            raise StaleCacheError(
                f"{self.folder}: stale, the dataset in {root} changed since the cache was built"
            )
        self.fps = float(index["fps"])
        self.frames: np.ndarray = np.load(self.folder / "frames.npy", mmap_mode="r")
        self.rows = {str((root / rel).resolve()): row for row, rel in enumerate(videos)}

    def reader(self, path: str | os.PathLike) -> CachedClipReader:
        """A reader of the video ``path`` (any spelling of a path the cache holds)."""
        row = self.rows.get(str(Path(path).resolve()))
        if row is None:
            raise VideoDecodeError(f"{path}: not in the clip cache {self.folder}", "missing")
        return CachedClipReader(path, self, row)


class CachedClipReader(VideoReader):
    """:class:`~mats_lab.data.decode.VideoReader` over one row of a :class:`ClipCache`: the
    same index checks, the same pixels as checked decoding, no decoder."""

    backend = "cache"

    def __init__(self, path: str | os.PathLike, cache: ClipCache, row: int) -> None:
        frames, height, width = cache.frames.shape[1:4]
        info = StreamInfo(
            path=os.fspath(path),
            num_frames=int(frames),
            container_frames=int(frames),
            counted_by="cache",
            fps=cache.fps,
            height=int(height),
            width=int(width),
            pts=None,
            time_base=Fraction(1, max(1, round(cache.fps))),
        )
        super().__init__(path, num_threads=1, info=info)
        self._clip = cache.frames[row]  # (T, H, W, 3) view of the mapped file

    def _read_sorted(self, indices: np.ndarray) -> np.ndarray:
        return np.array(self._clip[indices])  # a copy: transforms may write into it
