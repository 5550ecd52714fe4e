"""The lazily created, per-DataLoader-worker ``numpy.random.Generator`` of the random
transforms (see :mod:`mats_lab.mm.transforms` for the seeding rule)."""

from __future__ import annotations

import zlib

import numpy as np
from torch.utils.data import get_worker_info


class _LazyGenerator:
    """Owns one ``numpy.random.Generator``, (re)seeded per DataLoader worker on first use.

    ``stream`` names the transform's own stream of draws (default: the class name): transforms
    of one pipeline with different streams draw independent numbers from the same worker
    seed. A subclass of which a pipeline holds several instances (``MotionFlip``: one per
    axis) must pass a stream per instance, or those instances draw the same numbers.
    """

    def __init__(self, seed: int | None, stream: str | None = None) -> None:
        self.seed = seed
        self._stream = type(self).__name__ if stream is None else stream
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int] | None = None

    def _generator(self) -> np.random.Generator:
        info = get_worker_info()
        key = None if info is None else (int(info.id), int(info.seed))
        if self._rng is None or key != self._rng_key:
            salt = zlib.crc32(self._stream.encode())
            if key is not None:
                entropy = [key[1], salt] + ([self.seed] if self.seed is not None else [])
                self._rng = np.random.default_rng(np.random.SeedSequence(entropy))
            elif self.seed is not None:
                self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, salt]))
            else:
                self._rng = np.random.default_rng()
            self._rng_key = key
        return self._rng
