"""One lock per stage work dir, so workers on several nodes never run the same stage at once.

Stage work dirs live in the study folder, or in a shared stage store that every worker mounts
(``--stage-store``). A worker holds ``.stage-locks/<key>.lock``
(:func:`mats_lab.protocol.layout.stage_lock`) for as long as its stage process runs in
``stages/<key>/``; the lock is an OS file lock
(``filelock``: ``flock``, which NFS clients map to POSIX locks), so it is released by the kernel
when the worker dies, however it dies: a stage killed with its node can be resumed at once by
another node from its checkpoint. The stage process itself never inherits the lock (Python
opens files non-inheritable and ``Popen`` closes the others).

A stage this process already runs is never probed or locked twice (POSIX locks, which NFS
uses, belong to the process, so a second lock of the same file here would be granted).

Only the standard library, ``filelock`` and the protocol's layout are imported here.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from mats_lab.protocol.layout import stage_lock

__all__ = ["StageLocks"]


class StageLocks:
    """The stage locks of one stage root (a study folder or a shared store)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._held: dict[str, FileLock] = {}

    def held_here(self, key: str) -> bool:
        return key in self._held

    def taken_elsewhere(self, key: str) -> bool:
        """Whether another process (another worker, maybe on another node) runs stage ``key``."""
        if key in self._held:
            return False
        lock = self._lock(key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False

    def acquire(self, key: str) -> bool:
        """Take stage ``key``'s lock now; False when another process holds it."""
        if key in self._held:
            return True
        lock = self._lock(key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        self._held[key] = lock
        return True

    def release(self, key: str) -> None:
        lock = self._held.pop(key, None)
        if lock is not None:
            lock.release()

    def release_all(self) -> None:
        for key in list(self._held):
            self.release(key)

    def _lock(self, key: str) -> FileLock:
        path: Path = stage_lock(self.root, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # No soft (file-exists) fallback: it would outlive a dead worker. The file stays: unlinking
        # a flock file on release lets two processes lock two different inodes of one path.
        return FileLock(path, is_singleton=False, fallback_to_soft=False, preserve_lock_file=True)
