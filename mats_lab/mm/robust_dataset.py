"""Datasets that survive missing, empty and corrupt videos, and a hook that reports them.

Real video collections have bad files (a few hundred of Kinetics-400's 240k videos do not
decode). With ``skip_bad_samples=True`` a **training** sample whose pipeline raises
:class:`~mats_lab.data.decode.VideoDecodeError` or an ``OSError`` (``FileNotFoundError``
included) is skipped::

    train_dataloader = dict(dataset=dict(
        type='RobustVideoDataset', skip_bad_samples=True,
        ann_file=..., data_prefix=dict(video=...), pipeline=train_pipeline))
    custom_hooks = [dict(type='BadSampleReportHook')]

How it works:

* ``prepare_data`` catches those errors, logs an MMLogger warning naming the file and the
  error, marks the index bad, and returns ``None``; MMEngine's ``BaseDataset.__getitem__``
  then fetches another index (up to ``max_refetch`` times). The replacement is drawn
  uniformly among the indices not yet known to be bad, so a bad file is rarely tried twice in
  one epoch; it is still retried when the sampler next asks for it (a failure may have been
  transient, e.g. a network file system). MMLogger shows an identical warning only once per
  process, so a persistent worker names a given bad file once; the hook names them all every
  epoch.
* The marks live in shared memory (``multiprocessing`` ``RawArray``\\ s created in the
  constructor, i.e. before DataLoader workers fork or are spawned), so they cross worker
  processes, persistent or not. One byte per sample per array (two arrays).
* :class:`BadSampleReportHook` logs ``N bad samples skipped in epoch E`` after every
  training epoch (``N`` = distinct samples skipped in that epoch) and resets the count. With
  an ``IterBasedTrainLoop`` MMEngine calls ``after_train_epoch`` only once, at the end.

At **test** time (``test_mode=True``: validation and test sets) nothing is skipped, even with
the option on: the error propagates naming the file. A skipped sample would silently change
the metric's denominator, and MMEngine's ``BaseDataset`` raises on ``None`` in test mode
anyway. Clean the annotation list of a test set instead. With the option off the error
propagates too; the sample index and file are added to the exception as a note.

**Exact randomness.** An index tagged by :class:`~mats_lab.mm.samplers.EpochTaggedSampler`
(an :class:`~mats_lab.mm.samplers.EpochIndex`: ``seed``, ``epoch``) is loaded inside
:func:`~mats_lab.mm.transforms._rng.sample_randomness` with entropy ``(seed, epoch, index,
attempt)``: the random transforms and the global generators then draw numbers that depend on
nothing else (not on DataLoader workers, their persistence, or a resume). A bad sample's
replacement is drawn from the same entropy (``attempt`` counts replacements), so it is exact
too. A plain ``int`` index keeps the old behaviour.

:class:`SkipBadSamplesMixin` is the whole mechanism; :class:`RobustVideoDataset` and
:class:`RobustRawframeDataset` are mmaction's ``VideoDataset`` / ``RawframeDataset`` with it.
Another dataset class gains it by listing the mixin first among its bases and calling
``self._init_bad_sample_tracking(skip_bad_samples)`` at the end of its constructor.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from mmaction.datasets import RawframeDataset, VideoDataset
from mmaction.registry import DATASETS, HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mats_lab.data.decode import VideoDecodeError
from mats_lab.mm.samplers import EpochIndex
from mats_lab.mm.transforms._rng import sample_randomness

__all__ = [
    "SKIPPED_ERRORS",
    "BadSampleReportHook",
    "RobustRawframeDataset",
    "RobustVideoDataset",
    "SkipBadSamplesMixin",
    "find_bad_sample_datasets",
]

# What counts as a bad sample. Anything else (a KeyError from a misconfigured pipeline, a
# shape error) is a bug and always propagates.
SKIPPED_ERRORS: tuple[type[BaseException], ...] = (VideoDecodeError, OSError)

# Salt of a bad sample's replacement draw (see ``SkipBadSamplesMixin.__getitem__``).
_REFETCH_STREAM = 0x5EF37C4


class SkipBadSamplesMixin:
    """Skip training samples whose pipeline raises one of :data:`SKIPPED_ERRORS`.

    Mix into an MMEngine ``BaseDataset`` subclass (listed first) and call
    :meth:`_init_bad_sample_tracking` once the dataset is fully initialised.
    """

    skip_bad_samples: bool
    test_mode: bool
    ann_file: str

    def _init_bad_sample_tracking(self, skip_bad_samples: bool) -> None:
        self.skip_bad_samples = skip_bad_samples
        size = max(len(self), 1)  # type: ignore[arg-type]
        # Shared memory, created before any worker exists: 1 = bad (ever / in this epoch).
        self._bad_ever = multiprocessing.RawArray(ctypes.c_uint8, size)
        self._bad_in_epoch = multiprocessing.RawArray(ctypes.c_uint8, size)
        self._refetch_rng: np.random.Generator | None = None
        self._refetch_pid: int | None = None
        if skip_bad_samples and self.test_mode:
            print_log(
                f"{self.ann_file}: skip_bad_samples is ignored in test mode: a sample that "
                "fails to load raises (skipping it would change the metric)",
                logger="current",
                level=logging.WARNING,
            )

    # -- fetching ----------------------------------------------------------------------------

    def _sample_name(self, idx: int) -> str:
        info = self.get_data_info(idx)  # type: ignore[attr-defined]
        return str(info.get("filename", info.get("frame_dir", f"<sample {idx}>")))

    def prepare_data(self, idx: int) -> Any:
        """The pipeline's output for ``idx``; ``None`` for a skipped bad training sample."""
        try:
            return super().prepare_data(idx)  # type: ignore[misc]
        except SKIPPED_ERRORS as err:
            if not self.skip_bad_samples or self.test_mode:
                err.add_note(f"while loading sample {idx}: {self._sample_name(idx)}")
                raise
            name = self._sample_name(idx)
            self._bad_ever[idx] = 1
            self._bad_in_epoch[idx] = 1
            print_log(
                f"skipping bad sample {idx} ({name}): {type(err).__name__}: {err}",
                logger="current",
                level=logging.WARNING,
            )
            return None
        except Exception as err:
            err.add_note(f"while loading sample {idx}: {self._sample_name(idx)}")
            raise

    def __getitem__(self, idx: int) -> Any:
        """``BaseDataset.__getitem__``; an :class:`EpochIndex` is loaded with exact randomness."""
        if not isinstance(idx, EpochIndex):
            return super().__getitem__(idx)  # type: ignore[misc]
        if not self._fully_initialized:  # type: ignore[attr-defined]
            self.full_init()  # type: ignore[attr-defined]
        current = int(idx)
        for attempt in range(self.max_refetch + 1):  # type: ignore[attr-defined]
            entropy = idx.entropy(attempt)
            with sample_randomness(entropy):
                data = self.prepare_data(current)
            if data is not None:
                return data
            if self.test_mode:
                raise RuntimeError(f"{self.ann_file}: test-time pipeline returned None")
            current = self._replacement(entropy)
        raise RuntimeError(
            f"{self.ann_file}: no loadable sample after {self.max_refetch} "  # type: ignore[attr-defined]
            f"replacements of sample {int(idx)}"
        )

    def _replacement(self, entropy: tuple[int, ...]) -> int:
        """A replacement index drawn from ``entropy``, uniform over the samples not known bad."""
        good = np.flatnonzero(self._flags(self._bad_ever) == 0)
        if good.size == 0:
            raise RuntimeError(f"{self.ann_file}: every sample failed to load")
        rng = np.random.default_rng(np.random.SeedSequence([*entropy, _REFETCH_STREAM]))
        return int(rng.choice(good))

    def _rand_another(self) -> int:
        """A replacement index, uniform over the samples not yet known to be bad.

        Replaces ``BaseDataset._rand_another`` (global ``np.random``): the generator here is
        per process, seeded from torch's seed of that process (each DataLoader worker has its
        own, and it changes every epoch unless workers persist).
        """
        if self._refetch_rng is None or self._refetch_pid != os.getpid():
            self._refetch_rng = np.random.default_rng(torch.initial_seed())
            self._refetch_pid = os.getpid()
        good = np.flatnonzero(self._flags(self._bad_ever) == 0)
        if good.size == 0:
            raise RuntimeError(f"{self.ann_file}: every sample failed to load")
        return int(self._refetch_rng.choice(good))

    # -- counting ----------------------------------------------------------------------------

    def _flags(self, array: Any) -> np.ndarray:
        return np.frombuffer(array, dtype=np.uint8)[: len(self)]  # type: ignore[arg-type]

    def bad_samples_in_epoch(self) -> int:
        """Distinct samples skipped since the last :meth:`reset_bad_sample_count`."""
        return int(self._flags(self._bad_in_epoch).sum())

    def bad_samples_seen(self) -> int:
        """Distinct samples that have failed at least once since the dataset was built."""
        return int(self._flags(self._bad_ever).sum())

    def bad_sample_files(self) -> list[str]:
        """The files of the samples counted by :meth:`bad_samples_in_epoch`."""
        return [self._sample_name(int(i)) for i in np.flatnonzero(self._flags(self._bad_in_epoch))]

    def reset_bad_sample_count(self) -> None:
        """Start a new epoch's count (the known-bad marks used for refetching stay)."""
        self._flags(self._bad_in_epoch)[:] = 0


@DATASETS.register_module()
class RobustVideoDataset(SkipBadSamplesMixin, VideoDataset):
    """mmaction's ``VideoDataset`` with ``skip_bad_samples`` (see the module docstring).

    Args:
        ann_file, pipeline, data_prefix, multi_class, num_classes, start_index, modality,
            test_mode, delimiter: as for ``mmaction.datasets.VideoDataset``.
        skip_bad_samples: skip training samples that fail to load instead of raising.
            Defaults to False.
        max_refetch: how many replacements ``__getitem__`` tries before giving up.
            Defaults to 1000 (MMEngine's).
    """

    def __init__(
        self,
        ann_file: str,
        pipeline: list[dict | Callable],
        data_prefix: dict | None = None,
        multi_class: bool = False,
        num_classes: int | None = None,
        start_index: int = 0,
        modality: str = "RGB",
        test_mode: bool = False,
        delimiter: str = " ",
        skip_bad_samples: bool = False,
        max_refetch: int = 1000,
    ) -> None:
        super().__init__(
            ann_file,
            pipeline=pipeline,
            data_prefix=dict(video="") if data_prefix is None else data_prefix,
            multi_class=multi_class,
            num_classes=num_classes,
            start_index=start_index,
            modality=modality,
            test_mode=test_mode,
            delimiter=delimiter,
            max_refetch=max_refetch,
        )
        self._init_bad_sample_tracking(skip_bad_samples)


@DATASETS.register_module()
class RobustRawframeDataset(SkipBadSamplesMixin, RawframeDataset):
    """mmaction's ``RawframeDataset`` with ``skip_bad_samples`` (a missing frame file raises
    ``FileNotFoundError``, an ``OSError``).

    Args:
        ann_file, pipeline, data_prefix, filename_tmpl, with_offset, multi_class,
            num_classes, start_index, modality, test_mode: as for
            ``mmaction.datasets.RawframeDataset``.
        skip_bad_samples: skip training samples that fail to load instead of raising.
            Defaults to False.
        max_refetch: how many replacements ``__getitem__`` tries before giving up.
            Defaults to 1000.
    """

    def __init__(
        self,
        ann_file: str,
        pipeline: list[dict | Callable],
        data_prefix: dict | None = None,
        filename_tmpl: str = "img_{:05}.jpg",
        with_offset: bool = False,
        multi_class: bool = False,
        num_classes: int | None = None,
        start_index: int = 1,
        modality: str = "RGB",
        test_mode: bool = False,
        skip_bad_samples: bool = False,
        max_refetch: int = 1000,
    ) -> None:
        super().__init__(
            ann_file,
            pipeline=pipeline,
            data_prefix=dict(img="") if data_prefix is None else data_prefix,
            filename_tmpl=filename_tmpl,
            with_offset=with_offset,
            multi_class=multi_class,
            num_classes=num_classes,
            start_index=start_index,
            modality=modality,
            test_mode=test_mode,
            max_refetch=max_refetch,
        )
        self._init_bad_sample_tracking(skip_bad_samples)


def find_bad_sample_datasets(dataset: Any) -> Iterator[SkipBadSamplesMixin]:
    """The :class:`SkipBadSamplesMixin` datasets inside ``dataset``, looking through MMEngine's
    wrappers (``ConcatDataset.datasets``, ``RepeatDataset.dataset``, ...)."""
    if isinstance(dataset, SkipBadSamplesMixin):
        yield dataset
        return
    for child in getattr(dataset, "datasets", None) or ():
        yield from find_bad_sample_datasets(child)
    inner = getattr(dataset, "dataset", None)
    if inner is not None and inner is not dataset:
        yield from find_bad_sample_datasets(inner)


@HOOKS.register_module()
class BadSampleReportHook(Hook):
    """Log ``N bad samples skipped in epoch E`` after each training epoch, then reset ``N``.

    Looks for :class:`SkipBadSamplesMixin` datasets in the training dataloader (through
    dataset wrappers). Logs at WARNING level (with the files) when ``N > 0``, at INFO
    otherwise. ``E`` counts from 1, as MMEngine's own log lines do.

    Args:
        max_files: how many of the skipped files to name in the message. Defaults to 10.
    """

    priority = "LOW"

    def __init__(self, max_files: int = 10) -> None:
        self.max_files = max_files

    def after_train_epoch(self, runner: Any) -> None:
        """Report and reset the count of every robust training dataset."""
        epoch = runner.epoch + 1
        for dataset in find_bad_sample_datasets(runner.train_dataloader.dataset):
            count = dataset.bad_samples_in_epoch()
            message = f"{count} bad samples skipped in epoch {epoch}"
            if count:
                files = dataset.bad_sample_files()
                shown = ", ".join(files[: self.max_files])
                more = (
                    f" and {len(files) - self.max_files} more"
                    if len(files) > self.max_files
                    else ""
                )
                message += f" ({dataset.ann_file}): {shown}{more}"
            runner.logger.log(logging.WARNING if count else logging.INFO, message)
            dataset.reset_bad_sample_count()
