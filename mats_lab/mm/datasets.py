"""``MotionSynthDataset``: MMAction2's ``VideoDataset`` over the generated motion-synth data,
built on first use.

A config names the folder twice, as for any ``VideoDataset`` (``ann_file`` and
``data_prefix``), and once more as ``synth_root`` with the generator's parameters::

    data_root = 'data/motion_synth'
    dataset = dict(
        type='MotionSynthDataset',
        synth_root=data_root, synth_seed=0, synth_size='default', static=False,
        ann_file=f'{data_root}/train_list_videos.txt',
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline)

When ``synth_root`` has no dataset yet, :func:`mats_lab.data.synth.ensure_dataset` builds it
(once, even when parallel trials start together); when it holds a dataset with other
parameters, construction fails with a message naming the folder. Otherwise the class is
exactly ``VideoDataset``.

With ``decoded_cache=True`` the dataset also makes sure of its decoded-clip cache
(:func:`mats_lab.data.clip_cache.ensure_clip_cache`: every clip decoded once, checked, into
``<synth_root>/decoded-v1/``) and adds the cache folder to every sample as ``clip_cache``,
which the ``CachedVideoInit`` transform reads instead of decoding the file again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS

from mats_lab.data.clip_cache import ensure_clip_cache
from mats_lab.data.synth import DEFAULT_ROOT, ensure_dataset
from mats_lab.mm.robust_dataset import SkipBadSamplesMixin
from mats_lab.mm.transforms import clip_cache as _clip_cache  # noqa: F401  (CachedVideoInit)


@DATASETS.register_module()
class MotionSynthDataset(SkipBadSamplesMixin, VideoDataset):
    """A ``VideoDataset`` whose videos are generated into ``synth_root`` when missing.

    Args:
        ann_file, pipeline, data_prefix, multi_class, num_classes, start_index, modality,
            test_mode: as for ``mmaction.datasets.VideoDataset``.
        synth_root: the dataset folder ``ensure_dataset`` checks or builds.
        synth_seed: generator seed.
        synth_size: size preset (``tiny``, ``small``, ``default``, ``large``).
        static: build the static control (every frame identical) instead; give it its own
            ``synth_root``, conventionally ``<root>-static``.
        skip_bad_samples: log, replace and count undecodable samples in training
            (:class:`mats_lab.mm.robust_dataset.SkipBadSamplesMixin`).
        decoded_cache: build (once) and name the decoded-clip cache in every sample, for
            ``CachedVideoInit``.
        indices: MMEngine's subset (``BaseDataset(indices=...)``): an int keeps the first N
            clips of ``ann_file``, a list those positions. The generated lists deal the
            classes round-robin, so ``indices=80`` of the 400 training clips is 8 labelled
            clips a class: a label-scarce fine-tuning after pre-training on all 400.
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
        synth_root: str = DEFAULT_ROOT,
        synth_seed: int = 0,
        synth_size: str = "default",
        static: bool = False,
        skip_bad_samples: bool = False,
        decoded_cache: bool = False,
        indices: int | list[int] | None = None,
    ) -> None:
        root = ensure_dataset(synth_root, seed=synth_seed, size=synth_size, static=static)
        self.clip_cache = str(ensure_clip_cache(root)) if decoded_cache else None
        if not Path(ann_file).is_file():
            # Most likely ann_file points at another folder than synth_root: say so plainly
            # rather than let VideoDataset fail on an unrelated path.
            raise FileNotFoundError(
                f"ann_file {ann_file} does not exist after building the dataset in {root}; "
                "ann_file and data_prefix should point inside synth_root"
            )
        self.synth_root = root
        classes = tuple((root / "classes.txt").read_text().split())
        super().__init__(
            ann_file,
            pipeline=pipeline,
            data_prefix=dict(video="") if data_prefix is None else data_prefix,
            multi_class=multi_class,
            num_classes=num_classes,
            start_index=start_index,
            modality=modality,
            test_mode=test_mode,
            metainfo=dict(classes=classes),  # dataset.metainfo['classes'], index = label
            indices=indices,
        )
        self._init_bad_sample_tracking(skip_bad_samples)

    def load_data_list(self) -> list[dict]:
        """``VideoDataset``'s samples, each with ``clip_cache`` when the dataset has one."""
        data_list = super().load_data_list()
        if self.clip_cache is not None:
            for info in data_list:
                info["clip_cache"] = self.clip_cache
        return data_list
