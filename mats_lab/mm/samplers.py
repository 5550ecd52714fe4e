"""``EpochTaggedSampler``: MMEngine's ``DefaultSampler`` whose indices say which epoch and
run seed they belong to, so that a dataset can make each sample's randomness a pure function
of ``(seed, epoch, sample index)`` (see :mod:`mats_lab.mm.transforms._rng`).

Why: the random transforms used to draw from per-DataLoader-worker generators seeded from the
worker's ``info.seed``, which torch draws from its global RNG when a DataLoader iterator is
created. With ``persistent_workers=True`` an uninterrupted run creates that iterator once and a
resumed run again at the resume, so the augmentation streams of a resumed run differed from
the first resumed step. Tagged indices remove the dependence on workers altogether: the same
sample in the same epoch gets the same augmentation whatever the number of workers, whether
they persist, and whether the run was resumed.

The tag rides on the index itself: :class:`EpochIndex` is an ``int`` (so any dataset indexes
with it as before) carrying ``seed`` and ``epoch``. It survives the trip to worker processes
(pickling keeps the tag). A dataset that knows the tag (``SkipBadSamplesMixin`` datasets:
``RobustVideoDataset``, ``RobustRawframeDataset``, ``MotionSynthDataset``) seeds the pipeline
from it; any other dataset just sees an int. Dataset wrappers that compute a new index
(``RepeatDataset``: ``idx % len``, ``ConcatDataset``) hand a plain int on, so the tag is lost
and the old per-worker behaviour applies.

Use it in a training dataloader in place of ``DefaultSampler``::

    sampler=dict(type='EpochTaggedSampler', shuffle=True)

The order of indices is exactly ``DefaultSampler``'s (``seed + epoch`` shuffles it); MMEngine's
``DistSamplerSeedHook`` sets the epoch before each training epoch. In a distributed run the
tags hold the global sample index, so a sample's randomness does not depend on the number of
ranks either (a sample repeated by ``round_up`` padding gets the same draws twice).
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

from mmaction.registry import DATA_SAMPLERS
from mmengine.dataset import DefaultSampler

__all__ = ["EpochIndex", "EpochTaggedSampler"]

_MASK64 = (1 << 64) - 1


class EpochIndex(int):
    """A sample index (an ``int``) tagged with the run's sampler ``seed`` and the ``epoch``."""

    seed: int
    epoch: int

    def __new__(cls, index: int, seed: int, epoch: int) -> EpochIndex:
        obj = super().__new__(cls, index)
        obj.seed = int(seed)
        obj.epoch = int(epoch)
        return obj

    def __reduce__(self) -> tuple[type[EpochIndex], tuple[int, int, int]]:
        return (EpochIndex, (int(self), self.seed, self.epoch))

    def __repr__(self) -> str:
        return f"EpochIndex({int(self)}, seed={self.seed}, epoch={self.epoch})"

    def entropy(self, attempt: int = 0) -> tuple[int, ...]:
        """``(seed, epoch, index, attempt)`` as non-negative ints, for a ``SeedSequence``.

        ``attempt`` counts the replacements of a bad sample (0: the sample itself).
        """
        return (self.seed & _MASK64, self.epoch, int(self), attempt)


@DATA_SAMPLERS.register_module()
class EpochTaggedSampler(DefaultSampler):
    """``DefaultSampler`` yielding :class:`EpochIndex` instead of plain ints.

    Args:
        dataset (Sized): the dataset sampled.
        shuffle (bool): shuffle every epoch (by ``seed + epoch``). Defaults to True.
        seed (int | None): the shuffle and tag seed; None: one random seed synchronised
            across ranks (MMEngine's Runner passes the run's ``randomness.seed``).
        round_up (bool): pad to a multiple of the world size. Defaults to True.
    """

    def __init__(
        self,
        dataset: Sized,
        shuffle: bool = True,
        seed: int | None = None,
        round_up: bool = True,
    ) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed, round_up=round_up)

    def __iter__(self) -> Iterator[int]:
        """``DefaultSampler``'s indices of this rank and epoch, each an :class:`EpochIndex`."""
        seed, epoch = int(self.seed), int(self.epoch)
        for index in super().__iter__():
            yield EpochIndex(index, seed, epoch)
