"""MMAction2 / MMEngine components of mats-lab: list ``mats_lab.mm`` in a config's
``custom_imports`` and everything here is registered.

This is the only package that imports mmengine, mmcv or mmaction. Importing it first applies
the stack fixes of :mod:`mats_lab.mm.compat` (they must precede any import of
``mmaction.models``), then registers the backbone, the pre-training model, the dataset, the
transforms, the epoch-tagged sampler and the random-state hook.
"""

from mats_lab.mm import compat

compat.apply()

from mats_lab.mm import (  # noqa: E402  (registers)
    amp,
    backbone,
    datasets,
    motion_transforms,
    pretrain,
    progress_hook,
    rng_state,
    robust_dataset,
    samplers,
    transforms,
)

__all__ = [
    "amp",
    "backbone",
    "compat",
    "datasets",
    "motion_transforms",
    "pretrain",
    "progress_hook",
    "rng_state",
    "robust_dataset",
    "samplers",
    "transforms",
]
