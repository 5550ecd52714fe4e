"""Data-pipeline transforms for MMAction2: verified decoding, candidate sampling for adaptive
frame selection (METHOD §4), its pixel-difference ablation, RandAugment for video, and flips in
x, y or time and transposes that map a motion label to its mirror image (``MotionFlip``).

Typical training pipeline for adaptive frame selection::

    dict(type='CheckedVideoInit', backend='pyav'),
    dict(type='CandidateSampleFrames', clip_len=16, candidate_ratio=1.5, tubelet_size=2),
    dict(type='CheckedVideoDecode'),
    dict(type='PixelDiffFrameSelect', frame_budget=16, tubelet_size=2),  # the cheap ablation
    dict(type='Resize', scale=(-1, 256)),
    ...

Randomness: a sample loaded through ``EpochTaggedSampler`` by a ``SkipBadSamplesMixin`` dataset
(the mats-lab training configs) draws from generators made from ``(seed, epoch, sample index)``
and the transform's stream name alone, so it is the same in a resumed run and with any number
of workers (``mats_lab.mm.transforms._rng.sample_randomness``). Otherwise each random
transform owns a ``numpy.random.Generator``, created on first use. Inside a DataLoader worker
it is seeded from ``torch.utils.data.get_worker_info().seed`` (which differs per worker),
mixed with the transform's stream name (its class name; ``MotionFlip`` adds its axis, so the
flips of one pipeline draw independently) and its ``seed`` argument if given; in the main
process from ``seed`` and the stream name (``None``: fresh OS entropy). These transforms never
draw from global ``np.random``.
"""

# Importing the submodules registers their transforms in mmaction's TRANSFORMS.
from mats_lab.mm.transforms.decoding import CheckedVideoDecode, CheckedVideoInit
from mats_lab.mm.transforms.flips import MotionFlip
from mats_lab.mm.transforms.randaugment import (
    RAND_AUGMENT_OPS,
    TIMM_INCREASING_OPS,
    VideoRandAugment,
)
from mats_lab.mm.transforms.sampling import (
    CandidateSampleFrames,
    PixelDiffFrameSelect,
    candidate_frame_count,
)

__all__ = [
    "RAND_AUGMENT_OPS",
    "TIMM_INCREASING_OPS",
    "CandidateSampleFrames",
    "CheckedVideoDecode",
    "CheckedVideoInit",
    "MotionFlip",
    "PixelDiffFrameSelect",
    "VideoRandAugment",
    "candidate_frame_count",
]
