"""Data-pipeline throughput on a real clip: decode, sample, transform, in clips/s per worker.

The pipelines are the K400 training pipeline of ``mm_configs/`` (checked PyAV decoding,
``Resize`` to short side ``256/224 * S``, ``MultiScaleCrop``, ``Resize`` to ``S x S``,
``Flip``, ``FormatShape``, ``PackActionInputs``) with three samplers:

- ``uniform``: mmaction's ``SampleFrames`` (``T`` frames, every 4th);
- ``afs``: :class:`~mats_lab.mm.transforms.CandidateSampleFrames` — 1.5 x ``T`` candidate
  frames spread over the whole video, the model picks the informative tubelets (METHOD §4);
- ``afs_pixdiff``: the same candidates, :class:`~mats_lab.mm.transforms.PixelDiffFrameSelect`
  keeps ``T`` frames in the pipeline.

One worker is one process with one decoding thread and OpenCV limited to one thread, as a
DataLoader worker on a machine whose cores are all busy; the pipelines run interleaved, one
clip each per round. mmaction's crop and flip draw from numpy's global RNG, which is seeded
here; the mats-lab samplers take their own seed.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from mmaction.registry import TRANSFORMS

__all__ = ["PIPELINES", "pipeline_steps", "pipeline_throughput"]

PIPELINES = ("uniform", "afs", "afs_pixdiff")
CANDIDATE_RATIO = 1.5
FRAME_INTERVAL = 4


def pipeline_steps(name: str, frames: int, size: int, tubelet_size: int = 2) -> list[dict]:
    """Transform configs of pipeline ``name`` for ``frames`` x ``size`` x ``size`` clips."""
    if name not in PIPELINES:
        raise ValueError(f"pipeline must be one of {PIPELINES}, got {name!r}")
    if name == "uniform":
        sampler = [dict(type="SampleFrames", clip_len=frames, frame_interval=FRAME_INTERVAL)]
    else:
        sampler = [
            dict(
                type="CandidateSampleFrames",
                clip_len=frames,
                frame_interval=FRAME_INTERVAL,
                candidate_ratio=CANDIDATE_RATIO,
                tubelet_size=tubelet_size,
                seed=0,
            )
        ]
    select = []
    if name == "afs_pixdiff":
        select = [
            dict(
                type="PixelDiffFrameSelect", frame_budget=frames, tubelet_size=tubelet_size, seed=0
            )
        ]
    return [
        dict(type="CheckedVideoInit", backend="pyav", num_threads=1),
        *sampler,
        dict(type="CheckedVideoDecode"),
        *select,
        dict(type="Resize", scale=(-1, round(size * 256 / 224))),
        dict(
            type="MultiScaleCrop",
            input_size=size,
            scales=(1, 0.875, 0.75, 0.66),
            random_crop=False,
            max_wh_scale_gap=1,
        ),
        dict(type="Resize", scale=(size, size), keep_ratio=False),
        dict(type="Flip", flip_ratio=0.5),
        dict(type="FormatShape", input_format="NCTHW"),
        dict(type="PackActionInputs"),
    ]


def pipeline_throughput(
    video: str | Path, frames: int, size: int, repeats: int, tubelet_size: int = 2
) -> dict[str, dict[str, float]]:
    """Run every pipeline ``repeats`` times on ``video``, interleaved, after one warm-up.

    Returns:
        ``{pipeline: {'clips_per_s': 1 / median seconds per clip, 'median_s': ..., 'shape':
        the packed clip's shape, (1, C, T or 1.5 T, S, S)}}``.
    """
    # mmaction's crops and flips draw from numpy's global RNG: seed it for repeatable runs
    np.random.seed(0)  # noqa: NPY002
    pipelines = {
        name: [TRANSFORMS.build(step) for step in pipeline_steps(name, frames, size, tubelet_size)]
        for name in PIPELINES
    }
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    times: dict[str, list[float]] = {name: [] for name in PIPELINES}
    shapes: dict[str, list[int]] = {}
    try:
        for round_ in range(repeats + 1):
            for name, steps in pipelines.items():
                results: dict = {
                    "filename": str(video),
                    "label": 0,
                    "start_index": 0,
                    "modality": "RGB",
                }
                start = time.perf_counter()
                for step in steps:
                    results = step(results)
                elapsed = time.perf_counter() - start
                shapes[name] = list(results["inputs"].shape)
                if round_:  # round 0 warms up
                    times[name].append(elapsed)
    finally:
        cv2.setNumThreads(cv2_threads)
    figures = {}
    for name, values in times.items():
        median = statistics.median(values)
        figures[name] = {
            "clips_per_s": 1.0 / median,
            "median_s": median,
            "shape": shapes[name],
        }
    return figures
