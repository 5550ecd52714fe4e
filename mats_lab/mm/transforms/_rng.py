"""Where the random transforms get their numbers: :class:`_LazyGenerator`, and
:func:`sample_randomness`, which makes one sample's randomness a pure function of its seed
material (see :mod:`mats_lab.mm.transforms` for the rules).

Inside ``with sample_randomness(entropy):`` (entered by ``SkipBadSamplesMixin`` datasets for
every index tagged by :class:`~mats_lab.mm.samplers.EpochTaggedSampler`, with ``entropy = (seed,
epoch, index, attempt)``):

* every :class:`_LazyGenerator` draws from a ``numpy.random.Generator`` made from
  ``SeedSequence([*entropy, crc32(stream)(, seed)])``, one per ``(stream, seed)`` for the
  duration of the sample (so two draws of one transform continue one stream);
* the global generators that third-party transforms use (``np.random``: MMAction2's
  ``SampleFrames``, ``Flip``, ...; python ``random``; torch's CPU default generator) are
  seeded from ``entropy``, so loading a sample does not depend on the process's global random
  state. In the main process (``num_workers=0``: the trainer itself) they are put back as
  they were on exit, so loading does not disturb training's draws either; a DataLoader worker
  leaves them seeded (nothing else draws from them there, and saving and restoring numpy's
  and python's states costs about 0.1 ms per sample). CUDA generators are not touched.

Outside such a block the old per-worker behaviour applies.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch
from torch.utils.data import get_worker_info

__all__ = ["current_sample_entropy", "sample_randomness"]

#: Salt of the global generators' seed inside :func:`sample_randomness`.
_GLOBALS_STREAM = zlib.crc32(b"mats_lab.globals")


class _SampleRandomness:
    """The generators of one sample: one per ``(stream, seed)``, made on first use."""

    def __init__(self, entropy: tuple[int, ...]) -> None:
        self.entropy = entropy
        self._rngs: dict[tuple[str, int | None], np.random.Generator] = {}

    def generator(self, stream: str, seed: int | None) -> np.random.Generator:
        rng = self._rngs.get((stream, seed))
        if rng is None:
            material = [*self.entropy, zlib.crc32(stream.encode())]
            if seed is not None:
                material.append(seed)
            rng = np.random.default_rng(np.random.SeedSequence(material))
            self._rngs[(stream, seed)] = rng
        return rng


_SAMPLE: ContextVar[_SampleRandomness | None] = ContextVar("mats_lab_sample", default=None)


def current_sample_entropy() -> tuple[int, ...] | None:
    """The entropy of the innermost :func:`sample_randomness` block, or None outside one."""
    sample = _SAMPLE.get()
    return None if sample is None else sample.entropy


@contextmanager
def sample_randomness(entropy: Sequence[int]) -> Iterator[None]:
    """Load one sample with randomness fixed by ``entropy`` (non-negative ints).

    Seeds the random transforms and the global numpy / python / torch-CPU generators from
    ``entropy``; outside DataLoader workers, restores the global generators on exit (also on
    an exception).
    """
    material = tuple(int(e) for e in entropy)
    if any(e < 0 for e in material):
        raise ValueError(f"sample entropy must be non-negative ints, got {material}")
    words = np.random.SeedSequence([*material, _GLOBALS_STREAM]).generate_state(3, np.uint64)
    # The legacy global numpy generator on purpose: third-party transforms draw from it.
    saved = (
        (np.random.get_state(), random.getstate(), torch.default_generator.get_state())  # noqa: NPY002
        if get_worker_info() is None
        else None
    )
    token = _SAMPLE.set(_SampleRandomness(material))
    try:
        np.random.seed(int(words[0]) & 0xFFFFFFFF)  # noqa: NPY002
        random.seed(int(words[1]))
        torch.default_generator.manual_seed(int(words[2]) >> 1)
        yield
    finally:
        _SAMPLE.reset(token)
        if saved is not None:
            np.random.set_state(saved[0])  # noqa: NPY002
            random.setstate(saved[1])
            torch.default_generator.set_state(saved[2])


class _LazyGenerator:
    """Owns one ``numpy.random.Generator``, (re)seeded per DataLoader worker on first use.

    ``stream`` names the transform's own stream of draws (default: the class name): transforms
    of one pipeline with different streams draw independent numbers from the same worker
    seed. A subclass of which a pipeline holds several instances (``MotionFlip``: one per
    axis) must pass a stream per instance, or those instances draw the same numbers (inside
    :func:`sample_randomness` they share one stream instead).

    Inside :func:`sample_randomness` the generator is the sample's, derived from its entropy,
    the stream and ``seed``.
    """

    def __init__(self, seed: int | None, stream: str | None = None) -> None:
        self.seed = seed
        self._stream = type(self).__name__ if stream is None else stream
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int] | None = None

    def _generator(self) -> np.random.Generator:
        sample = _SAMPLE.get()
        if sample is not None:
            return sample.generator(self._stream, self.seed)
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
