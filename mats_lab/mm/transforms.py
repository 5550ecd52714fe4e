"""Data-pipeline transforms for MMAction2: verified decoding, candidate sampling for adaptive
frame selection (METHOD §4), its pixel-difference ablation, and RandAugment for video.

Typical training pipeline for adaptive frame selection::

    dict(type='CheckedVideoInit', backend='pyav'),
    dict(type='CandidateSampleFrames', clip_len=16, candidate_ratio=1.5, tubelet_size=2),
    dict(type='CheckedVideoDecode'),
    dict(type='PixelDiffFrameSelect', frame_budget=16, tubelet_size=2),  # the cheap ablation
    dict(type='Resize', scale=(-1, 256)),
    ...

Randomness: each random transform owns a ``numpy.random.Generator``, created on first use.
Inside a DataLoader worker it is seeded from ``torch.utils.data.get_worker_info().seed`` (which
differs per worker and per epoch), mixed with the transform's class name (so two transforms do
not draw the same numbers) and its ``seed`` argument if given; in the main process from
``seed`` alone (``None``: fresh OS entropy). Global ``np.random`` is never used.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform
from torch.utils.data import get_worker_info

from mats_lab.data.decode import BACKENDS, VideoReader, open_video

__all__ = [
    "RAND_AUGMENT_OPS",
    "TIMM_INCREASING_OPS",
    "CandidateSampleFrames",
    "CheckedVideoDecode",
    "CheckedVideoInit",
    "PixelDiffFrameSelect",
    "VideoRandAugment",
    "candidate_frame_count",
]


class _LazyGenerator:
    """Owns one ``numpy.random.Generator``, (re)seeded per DataLoader worker on first use."""

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int] | None = None

    def _generator(self) -> np.random.Generator:
        info = get_worker_info()
        key = None if info is None else (int(info.id), int(info.seed))
        if self._rng is None or key != self._rng_key:
            salt = zlib.crc32(type(self).__name__.encode())
            if key is not None:
                entropy = [key[1], salt] + ([self.seed] if self.seed is not None else [])
                self._rng = np.random.default_rng(np.random.SeedSequence(entropy))
            elif self.seed is not None:
                self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, salt]))
            else:
                self._rng = np.random.default_rng()
            self._rng_key = key
        return self._rng


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


@TRANSFORMS.register_module()
class CheckedVideoInit(BaseTransform):
    """Open a video with a verifying reader (:mod:`mats_lab.data.decode`).

    Unlike ``DecordInit`` / ``PyAVInit``, ``total_frames`` is the true number of frames (a
    container stating 0 or a wrong count is corrected by counting), so a sampler can never ask
    for frames that do not exist. Pair with :class:`CheckedVideoDecode`.

    Required Keys:

        - filename

    Added Keys:

        - video_reader
        - total_frames
        - avg_fps

    Args:
        backend (str): ``'pyav'``, ``'decord'`` or ``'opencv'``. Defaults to ``'pyav'``.
        num_threads (int): decoder threads (0 = the library's choice). Defaults to 1.

    Raises:
        VideoDecodeError: missing, empty or corrupt file; the message names it.
    """

    def __init__(self, backend: str = "pyav", num_threads: int = 1) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown video backend {backend!r}; choose one of {BACKENDS}")
        self.backend = backend
        self.num_threads = num_threads

    def transform(self, results: dict) -> dict:
        """Open ``results['filename']``."""
        reader = open_video(results["filename"], self.backend, self.num_threads)
        results["video_reader"] = reader
        results["total_frames"] = reader.num_frames
        results["avg_fps"] = reader.fps
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(backend={self.backend!r}, num_threads={self.num_threads})"
        )


@TRANSFORMS.register_module()
class CheckedVideoDecode(BaseTransform):
    """Decode ``frame_inds`` with the reader of :class:`CheckedVideoInit`, then close it.

    Like mmaction's ``DecordDecode``, ``frame_inds`` are used as they are: the sampler has
    already added ``start_index`` (mmaction's ``SampleFrames`` and :class:`CandidateSampleFrames`
    both do), and a video's frames are numbered from 0. Every returned frame is verified to be
    the one asked for.

    Required Keys:

        - video_reader
        - frame_inds

    Added Keys:

        - imgs
        - original_shape
        - img_shape

    Modified Keys:

        - frame_inds (flattened to 1-D)
        - video_reader (closed and set to ``None``)

    Raises:
        VideoDecodeError: an index outside the video, or a frame the decoder got wrong; the
            message names the file and the index.
    """

    def __init__(self) -> None:
        # Explicit, so that a stray config key fails naming the key (TypeError).
        super().__init__()

    def transform(self, results: dict) -> dict:
        """Decode the frames."""
        reader: VideoReader | None = results.get("video_reader")
        if reader is None:
            raise KeyError(
                f"{results.get('filename', '<no filename>')}: no open 'video_reader' "
                "(put CheckedVideoInit before CheckedVideoDecode)"
            )
        frame_inds = np.asarray(results["frame_inds"]).reshape(-1)
        results["frame_inds"] = frame_inds
        try:
            frames = reader.get_frames(frame_inds)  # (n, H, W, 3) uint8 RGB
        finally:
            reader.close()
            results["video_reader"] = None
        results["imgs"] = list(frames)
        results["original_shape"] = frames.shape[1:3]
        results["img_shape"] = frames.shape[1:3]
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"


# --------------------------------------------------------------------------------------------
# Candidate sampling and pixel-difference selection (METHOD §4)
# --------------------------------------------------------------------------------------------


def candidate_frame_count(clip_len: int, candidate_ratio: float, tubelet_size: int) -> int:
    """``tubelet_size * round(candidate_ratio * clip_len / tubelet_size)`` (halves round up)."""
    return tubelet_size * math.floor(candidate_ratio * clip_len / tubelet_size + 0.5)


@TRANSFORMS.register_module()
class CandidateSampleFrames(_LazyGenerator, BaseTransform):
    """Sample candidate tubelets spread over the whole video, for adaptive frame selection.

    Instead of one ``clip_len``-frame clip, each clip is ``n_cand = tubelet_size *
    round(candidate_ratio * clip_len / tubelet_size)`` frames: ``m = n_cand / tubelet_size``
    candidate tubelets, one per segment of an even split of the video into ``m`` segments.
    A tubelet is ``tubelet_size`` frames ``frame_interval`` apart (its span is
    ``(tubelet_size - 1) * frame_interval + 1`` frames) and lies inside its segment: at a
    uniformly random position in training, centred in test mode (with ``num_clips > 1`` in
    test mode, clip ``c`` sits at fraction ``(c + 0.5) / num_clips`` of the free room, so the
    views differ). A later step (the model's selector, or :class:`PixelDiffFrameSelect`) keeps
    ``frame_budget = clip_len`` frames of them. With ``candidate_ratio=1.0`` this is plain
    uniform (segment-based) sampling of ``clip_len`` frames.

    Videos too short for ``m`` disjoint tubelets (a segment shorter than a span): the tubelets
    are spaced evenly over ``[0, total_frames - span]`` instead, overlapping (some frames then
    appear twice), in both modes. Videos shorter than one span: every tubelet starts at frame 0
    and indices past the end follow ``out_of_bound_opt``: ``'loop'`` wraps around (``i mod
    total_frames``), ``'repeat_last'`` repeats the last frame.

    ``start_index`` is added to the indices, as mmaction's ``SampleFrames`` does.

    Required Keys:

        - total_frames
        - start_index (optional, default 0)

    Added Keys:

        - frame_inds (int64, ``num_clips * n_cand``; within a clip the tubelets are in
          temporal order, and so are all frames unless a short video made tubelets overlap)
        - clip_len (``n_cand``: frames per clip as delivered)
        - frame_interval
        - num_clips
        - candidate_ratio
        - frame_budget (the ``clip_len`` asked for: frames per clip the model will see)

    Args:
        clip_len (int): frames per clip the model sees (the frame budget); a multiple of
            ``tubelet_size``.
        frame_interval (int): distance between the frames of one tubelet. Defaults to 1.
        num_clips (int): clips (views) per video. Defaults to 1.
        candidate_ratio (float): α >= 1, how many more frames to deliver. Defaults to 1.5.
        tubelet_size (int): frames per tubelet. Defaults to 2.
        test_mode (bool): centred, deterministic positions. Defaults to False.
        out_of_bound_opt (str): ``'loop'`` or ``'repeat_last'``. Defaults to ``'loop'``.
        seed (int | None): seed of the generator outside DataLoader workers. Defaults to None.
    """

    def __init__(
        self,
        clip_len: int,
        frame_interval: int = 1,
        num_clips: int = 1,
        candidate_ratio: float = 1.5,
        tubelet_size: int = 2,
        test_mode: bool = False,
        out_of_bound_opt: str = "loop",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if tubelet_size < 1 or clip_len < 1 or clip_len % tubelet_size:
            raise ValueError(
                f"clip_len={clip_len} must be a positive multiple of tubelet_size={tubelet_size}"
            )
        if candidate_ratio < 1.0:
            raise ValueError(f"candidate_ratio={candidate_ratio} must be >= 1")
        if frame_interval < 1 or num_clips < 1:
            raise ValueError("frame_interval and num_clips must be >= 1")
        if out_of_bound_opt not in ("loop", "repeat_last"):
            raise ValueError(f"out_of_bound_opt={out_of_bound_opt!r}: use 'loop' or 'repeat_last'")
        self.clip_len = clip_len
        self.frame_interval = frame_interval
        self.num_clips = num_clips
        self.candidate_ratio = candidate_ratio
        self.tubelet_size = tubelet_size
        self.test_mode = test_mode
        self.out_of_bound_opt = out_of_bound_opt
        self.num_candidates = candidate_frame_count(clip_len, candidate_ratio, tubelet_size)

    @property
    def num_tubelets(self) -> int:
        """Candidate tubelets per clip, ``m``."""
        return self.num_candidates // self.tubelet_size

    def _tubelet_starts(self, total: int, clip: int) -> np.ndarray:
        """First frame of each of the ``m`` tubelets of clip ``clip``, ``(m,)`` non-decreasing."""
        m = self.num_tubelets
        span = (self.tubelet_size - 1) * self.frame_interval + 1
        bounds = (np.arange(m + 1) * total) // m  # segment k is [bounds[k], bounds[k + 1])
        room = np.diff(bounds) - span  # (m,) free start positions beyond the first
        if room.min() >= 0:
            if self.test_mode:
                offsets = (room * (2 * clip + 1)) // (2 * self.num_clips)
            else:
                offsets = self._generator().integers(0, room + 1)
            return bounds[:-1] + offsets
        if total >= span:  # too short for disjoint tubelets: evenly spaced, overlapping
            return np.round(np.linspace(0, total - span, m)).astype(np.int64)
        return np.zeros(m, dtype=np.int64)

    def transform(self, results: dict) -> dict:
        """Sample the candidate frame indices."""
        total = int(results["total_frames"])
        if total < 1:
            raise ValueError(
                f"{results.get('filename', '<no filename>')}: total_frames={total}, "
                "nothing to sample"
            )
        steps = np.arange(self.tubelet_size) * self.frame_interval  # (tubelet_size,)
        clips = []
        for clip in range(self.num_clips):
            starts = self._tubelet_starts(total, clip)  # (m,)
            clips.append((starts[:, None] + steps[None, :]).reshape(-1))  # (n_cand,)
        frame_inds = np.concatenate(clips).astype(np.int64)
        if self.out_of_bound_opt == "loop":
            frame_inds = np.mod(frame_inds, total)
        else:
            frame_inds = np.minimum(frame_inds, total - 1)
        results["frame_inds"] = frame_inds + int(results.get("start_index", 0))
        results["clip_len"] = self.num_candidates
        results["frame_interval"] = self.frame_interval
        results["num_clips"] = self.num_clips
        results["candidate_ratio"] = self.candidate_ratio
        results["frame_budget"] = self.clip_len
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(clip_len={self.clip_len}, "
            f"frame_interval={self.frame_interval}, num_clips={self.num_clips}, "
            f"candidate_ratio={self.candidate_ratio}, tubelet_size={self.tubelet_size}, "
            f"test_mode={self.test_mode}, out_of_bound_opt={self.out_of_bound_opt!r}, "
            f"seed={self.seed})"
        )


def _weighted_order_without_replacement(
    weights: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A random order of ``weights``' indices, as if drawn one by one without replacement
    with probability proportional to weight (Efraimidis–Spirakis keys ``E / w``).

    Zero weights come after all positive ones, in uniformly random order; all zero: uniform.
    """
    keys = np.full(weights.shape, np.inf)
    positive = weights > 0
    keys[positive] = rng.exponential(size=int(positive.sum())) / weights[positive]
    tiebreak = rng.random(weights.shape)
    return np.lexsort((tiebreak, keys))


@TRANSFORMS.register_module()
class PixelDiffFrameSelect(_LazyGenerator, BaseTransform):
    """Keep the ``frame_budget`` frames of the candidate tubelets that move most.

    The cheap ablation of the model's motion-aware frame selection (METHOD §4). Each candidate
    tubelet's score is the mean absolute pixel difference between its consecutive frames
    (frames ``j`` and ``j + 1`` of the tubelet, averaged over pairs, pixels and channels) — the
    motion inside the tubelet, which is what the model's token scores measure. The difference
    to the previous tubelet is not used: candidates are far apart in time, so it measures scene
    change rather than motion. With ``tubelet_size=1`` a frame is scored against the previous
    candidate frame (the first against the second).

    Of the ``clip_len / tubelet_size`` candidates, ``frame_budget / tubelet_size`` are kept, in
    temporal order: the highest scores in test mode (ties to the earlier tubelet); in training
    a draw without replacement with probability proportional to score (informative tubelets
    first, then uniformly among zero scores; uniform if all are zero). Per clip when
    ``num_clips > 1``.

    Required Keys:

        - imgs
        - frame_inds
        - clip_len
        - num_clips
        - frame_budget (optional; if present it must equal ``frame_budget``)

    Modified Keys:

        - imgs
        - frame_inds
        - clip_len (= ``frame_budget``)

    Added Keys:

        - frame_budget

    Args:
        frame_budget (int): frames per clip to keep; a multiple of ``tubelet_size``.
        tubelet_size (int): frames per tubelet. Defaults to 2.
        test_mode (bool): deterministic top scores. Defaults to False.
        seed (int | None): seed of the generator outside DataLoader workers. Defaults to None.
    """

    def __init__(
        self,
        frame_budget: int,
        tubelet_size: int = 2,
        test_mode: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if tubelet_size < 1 or frame_budget < 1 or frame_budget % tubelet_size:
            raise ValueError(
                f"frame_budget={frame_budget} must be a positive multiple of "
                f"tubelet_size={tubelet_size}"
            )
        self.frame_budget = frame_budget
        self.tubelet_size = tubelet_size
        self.test_mode = test_mode

    def tubelet_scores(self, frames: np.ndarray) -> np.ndarray:
        """``(T, H, W, C)`` uint8 frames of one clip -> ``(T / tubelet_size,)`` float64 scores."""
        t = frames.shape[0]
        clip = frames.astype(np.int16)
        if self.tubelet_size == 1:
            if t == 1:
                return np.zeros(1)
            diffs = np.abs(np.diff(clip, axis=0)).mean(axis=(1, 2, 3))  # (T - 1,)
            return np.concatenate([diffs[:1], diffs]).astype(np.float64)
        tubelets = clip.reshape(t // self.tubelet_size, self.tubelet_size, *clip.shape[1:])
        diffs = np.abs(np.diff(tubelets, axis=1))  # (t, tubelet_size - 1, H, W, C)
        return diffs.mean(axis=(1, 2, 3, 4), dtype=np.float64)

    def select(self, scores: np.ndarray) -> np.ndarray:
        """Indices of the kept tubelets, ascending, ``(frame_budget / tubelet_size,)``."""
        keep = self.frame_budget // self.tubelet_size
        if self.test_mode:
            order = np.argsort(-scores, kind="stable")
        else:
            order = _weighted_order_without_replacement(scores, self._generator())
        return np.sort(order[:keep])

    def transform(self, results: dict) -> dict:
        """Select the frames."""
        clip_len = int(results["clip_len"])
        num_clips = int(results.get("num_clips", 1))
        imgs = results["imgs"]
        frame_inds = np.asarray(results["frame_inds"]).reshape(-1)
        where = results.get("filename", "<no filename>")
        if results.get("frame_budget", self.frame_budget) != self.frame_budget:
            raise ValueError(
                f"{where}: the sampler's frame_budget={results['frame_budget']} differs from "
                f"PixelDiffFrameSelect's frame_budget={self.frame_budget}"
            )
        if len(imgs) != clip_len * num_clips or frame_inds.size != len(imgs):
            raise ValueError(
                f"{where}: {len(imgs)} imgs and {frame_inds.size} frame_inds for "
                f"num_clips={num_clips} x clip_len={clip_len}"
            )
        if clip_len % self.tubelet_size or clip_len < self.frame_budget:
            raise ValueError(
                f"{where}: cannot keep {self.frame_budget} frames in tubelets of "
                f"{self.tubelet_size} from clips of {clip_len}"
            )
        kept: list[int] = []
        for clip in range(num_clips):
            first = clip * clip_len
            frames = np.stack(imgs[first : first + clip_len])  # (clip_len, H, W, C)
            tubelets = self.select(self.tubelet_scores(frames))  # (keep,)
            frame_pos = tubelets[:, None] * self.tubelet_size + np.arange(self.tubelet_size)
            kept.extend((first + frame_pos.reshape(-1)).tolist())
        results["imgs"] = [imgs[i] for i in kept]
        results["frame_inds"] = frame_inds[kept]
        results["clip_len"] = self.frame_budget
        results["frame_budget"] = self.frame_budget
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(frame_budget={self.frame_budget}, "
            f"tubelet_size={self.tubelet_size}, test_mode={self.test_mode}, seed={self.seed})"
        )


# --------------------------------------------------------------------------------------------
# RandAugment for video
# --------------------------------------------------------------------------------------------

# timm's "inc1" RandAugment list (``_RAND_INCREASING_TRANSFORMS``), used by VideoMAE's
# fine-tuning with "rand-m7-n4-mstd0.5-inc1".
TIMM_INCREASING_OPS: tuple[str, ...] = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "PosterizeIncreasing",
    "SolarizeIncreasing",
    "SolarizeAdd",
    "ColorIncreasing",
    "ContrastIncreasing",
    "BrightnessIncreasing",
    "SharpnessIncreasing",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
)

_MAX_LEVEL = 10.0  # timm's _LEVEL_DENOM: magnitudes are in [0, 10]


def _lut(clip: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Apply a per-value table: ``(256,)`` for all channels or ``(C, 256)`` per channel."""
    table = np.clip(table, 0, 255).astype(np.uint8)
    if table.ndim == 1:
        return table[clip]
    out = np.empty_like(clip)
    for c in range(clip.shape[-1]):
        out[..., c] = table[c][clip[..., c]]
    return out


def _blend(degenerate: np.ndarray, clip: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``Image.blend(degenerate, clip, factor)``."""
    out = degenerate.astype(np.float32) + factor * (clip.astype(np.float32) - degenerate)
    return np.clip(np.trunc(out), 0, 255).astype(np.uint8)  # PIL truncates


def _gray(clip: np.ndarray) -> np.ndarray:
    """PIL's RGB -> L conversion (ITU-R 601-2 luma), ``(..., H, W, 1)`` uint8."""
    c = clip.astype(np.uint32)
    luma = (c[..., 0] * 19595 + c[..., 1] * 38470 + c[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[..., None]


def _auto_contrast(clip: np.ndarray) -> np.ndarray:
    """PIL's ``autocontrast`` with the min/max of each channel over the whole clip."""
    table = np.tile(np.arange(256, dtype=np.float64), (clip.shape[-1], 1))
    for c in range(clip.shape[-1]):
        lo, hi = int(clip[..., c].min()), int(clip[..., c].max())
        if hi > lo:
            scale = 255.0 / (hi - lo)
            table[c] = np.floor(np.arange(256) * scale - lo * scale)
    return _lut(clip, table)


def _equalize(clip: np.ndarray) -> np.ndarray:
    """PIL's ``equalize`` with each channel's histogram over the whole clip."""
    table = np.tile(np.arange(256, dtype=np.int64), (clip.shape[-1], 1))
    for c in range(clip.shape[-1]):
        hist = np.bincount(clip[..., c].reshape(-1), minlength=256)
        nonzero = hist[hist > 0]
        if nonzero.size <= 1:
            continue
        step = (int(nonzero.sum()) - int(nonzero[-1])) // 255
        if step == 0:
            continue
        cumulative = np.concatenate([[0], np.cumsum(hist)[:-1]])
        table[c] = (step // 2 + cumulative) // step
    return _lut(clip, table)


def _warp(
    clip: np.ndarray, matrix: np.ndarray, fill: tuple[int, int, int], interp: int
) -> list[np.ndarray]:
    """Warp every frame with the same ``(2, 3)`` output->input affine ``matrix``."""
    h, w = clip.shape[1:3]
    flags = interp | cv2.WARP_INVERSE_MAP
    return [
        cv2.warpAffine(
            frame, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
        )
        for frame in clip
    ]


def _sharpness_degenerate(clip: np.ndarray) -> np.ndarray:
    """PIL's ``ImageFilter.SMOOTH`` (3x3, centre 5, /13), border pixels left unchanged."""
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13.0
    out = clip.copy()
    for i, frame in enumerate(clip):
        smooth = cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REPLICATE)
        out[i, 1:-1, 1:-1] = smooth[1:-1, 1:-1]
    return out


RAND_AUGMENT_OPS: tuple[str, ...] = (
    "Identity",
    *TIMM_INCREASING_OPS,
    "Posterize",
    "Solarize",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
)


@TRANSFORMS.register_module()
class VideoRandAugment(_LazyGenerator, BaseTransform):
    """RandAugment for video: the same ops with the same magnitudes on every frame of a clip.

    Follows timm's ``rand-m{magnitude}-n{num_ops}-mstd{magnitude_std}-inc1`` (VideoMAE's
    fine-tuning uses ``rand-m7-n4-mstd0.5-inc1``): ``num_ops`` ops drawn uniformly with
    replacement from ``ops``; each is applied with probability ``prob``, at a magnitude drawn
    from ``N(magnitude, magnitude_std)`` clipped to ``[0, 10]``, with a random sign where the
    op has one; all of it drawn once per clip (per call). Level-to-argument mappings are
    timm's: rotate ±30°·m/10, shear ±0.3·m/10, translate ±0.45·m/10 of the size, enhance
    factors ``1 ± 0.9·m/10`` (at least 0.1), posterize keeps ``4 - int(0.4 m)`` bits, solarize
    threshold ``256 - int(25.6 m)``, solarize-add ``int(11 m)`` below 128. The non-increasing
    variants (``Posterize``, ``Solarize``, ``Color`` ...) use timm's other mappings.

    Implemented with numpy and OpenCV, following PIL's formulas. One deliberate difference:
    the statistics of auto-contrast, equalize and contrast (channel range, histogram, mean
    grey) are taken over the whole clip rather than per frame, so that one op is one function
    applied to every frame and a static video stays static (per-frame statistics make frames
    flicker).

    Required Keys:

        - imgs (list of ``H x W x 3`` uint8 RGB, all the same size)

    Modified Keys:

        - imgs

    Args:
        num_ops (int): ops per clip ("n"). Defaults to 4.
        magnitude (float): mean magnitude in ``[0, 10]`` ("m"). Defaults to 7.
        magnitude_std (float): std of the magnitude ("mstd"); 0 = fixed, ``inf`` = uniform in
            ``[0, magnitude]``. Defaults to 0.5.
        prob (float): probability to apply each drawn op. Defaults to 0.5 (timm).
        ops (Sequence[str] | None): op names from :data:`RAND_AUGMENT_OPS`; None = timm's
            ``inc1`` list :data:`TIMM_INCREASING_OPS`. Defaults to None.
        fill (Sequence[int]): RGB fill for pixels that geometric ops uncover. Defaults to
            ImageNet's mean ``(124, 116, 104)`` as VideoMAE uses.
        interpolation (str): ``'bilinear'`` or ``'bicubic'`` for geometric ops. Defaults to
            ``'bicubic'`` (VideoMAE's ``train_interpolation``).
        seed (int | None): seed of the generator outside DataLoader workers. Defaults to None.
    """

    def __init__(
        self,
        num_ops: int = 4,
        magnitude: float = 7.0,
        magnitude_std: float = 0.5,
        prob: float = 0.5,
        ops: Sequence[str] | None = None,
        fill: Sequence[int] = (124, 116, 104),
        interpolation: str = "bicubic",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        names = tuple(ops) if ops is not None else TIMM_INCREASING_OPS
        unknown = [n for n in names if n not in RAND_AUGMENT_OPS]
        if unknown or not names:
            raise ValueError(f"unknown RandAugment ops {unknown}; choose from {RAND_AUGMENT_OPS}")
        if interpolation not in ("bilinear", "bicubic"):
            raise ValueError(f"interpolation={interpolation!r}: use 'bilinear' or 'bicubic'")
        if not 0.0 <= prob <= 1.0 or num_ops < 0 or magnitude_std < 0:
            raise ValueError("need 0 <= prob <= 1, num_ops >= 0, magnitude_std >= 0")
        if len(fill) != 3:
            raise ValueError(f"fill={fill} must be an RGB triple")
        self.num_ops = num_ops
        self.magnitude = magnitude
        self.magnitude_std = magnitude_std
        self.prob = prob
        self.ops = names
        self.fill = (int(fill[0]), int(fill[1]), int(fill[2]))
        self.interpolation = interpolation
        self._interp = cv2.INTER_CUBIC if interpolation == "bicubic" else cv2.INTER_LINEAR

    # -- drawing ------------------------------------------------------------------------------

    def draw(self) -> list[tuple[str, float, float]]:
        """The ops of one clip: ``(name, magnitude, sign)`` for each op that will be applied."""
        rng = self._generator()
        chosen = rng.choice(len(self.ops), size=self.num_ops, replace=True)
        plan = []
        for i in chosen:
            if self.prob < 1.0 and rng.random() > self.prob:
                continue
            m = self.magnitude
            if self.magnitude_std == math.inf:
                m = rng.uniform(0.0, self.magnitude)
            elif self.magnitude_std > 0:
                m = rng.normal(self.magnitude, self.magnitude_std)
            m = min(max(float(m), 0.0), _MAX_LEVEL)
            sign = -1.0 if rng.random() > 0.5 else 1.0
            plan.append((self.ops[int(i)], m, sign))
        return plan

    # -- applying -----------------------------------------------------------------------------

    def apply(self, clip: np.ndarray, name: str, m: float, sign: float) -> np.ndarray:
        """Apply op ``name`` at magnitude ``m`` (sign ``±1`` where it has one) to ``(T, H, W, 3)``
        uint8 frames."""
        level = m / _MAX_LEVEL
        h, w = clip.shape[1:3]
        ops: dict[str, Callable[[], Any]] = {
            "Identity": lambda: clip,
            "AutoContrast": lambda: _auto_contrast(clip),
            "Equalize": lambda: _equalize(clip),
            "Invert": lambda: 255 - clip,
            "Rotate": lambda: self._rotate(clip, sign * level * 30.0),
            "PosterizeIncreasing": lambda: self._posterize(clip, 4 - int(level * 4)),
            "Posterize": lambda: self._posterize(clip, int(level * 4)),
            "SolarizeIncreasing": lambda: self._solarize(clip, 256 - int(level * 256)),
            "Solarize": lambda: self._solarize(clip, int(level * 256)),
            "SolarizeAdd": lambda: self._solarize_add(clip, int(level * 110)),
            "ColorIncreasing": lambda: _blend(_gray(clip), clip, self._inc(level, sign)),
            "Color": lambda: _blend(_gray(clip), clip, level * 1.8 + 0.1),
            "ContrastIncreasing": lambda: self._contrast(clip, self._inc(level, sign)),
            "Contrast": lambda: self._contrast(clip, level * 1.8 + 0.1),
            "BrightnessIncreasing": lambda: _blend(
                np.zeros_like(clip), clip, self._inc(level, sign)
            ),
            "Brightness": lambda: _blend(np.zeros_like(clip), clip, level * 1.8 + 0.1),
            "SharpnessIncreasing": lambda: _blend(
                _sharpness_degenerate(clip), clip, self._inc(level, sign)
            ),
            "Sharpness": lambda: _blend(_sharpness_degenerate(clip), clip, level * 1.8 + 0.1),
            "ShearX": lambda: self._affine(clip, [[1, sign * level * 0.3, 0], [0, 1, 0]]),
            "ShearY": lambda: self._affine(clip, [[1, 0, 0], [sign * level * 0.3, 1, 0]]),
            "TranslateXRel": lambda: self._affine(
                clip, [[1, 0, sign * level * 0.45 * w], [0, 1, 0]]
            ),
            "TranslateYRel": lambda: self._affine(
                clip, [[1, 0, 0], [0, 1, sign * level * 0.45 * h]]
            ),
        }
        return np.asarray(ops[name]())

    @staticmethod
    def _inc(level: float, sign: float) -> float:
        return max(0.1, 1.0 + sign * level * 0.9)

    @staticmethod
    def _posterize(clip: np.ndarray, bits: int) -> np.ndarray:
        if bits >= 8:
            return clip
        mask = np.uint8(~(2 ** (8 - bits) - 1) & 0xFF)
        return clip & mask

    @staticmethod
    def _solarize(clip: np.ndarray, threshold: int) -> np.ndarray:
        return np.where(clip >= threshold, 255 - clip, clip).astype(np.uint8)

    @staticmethod
    def _solarize_add(clip: np.ndarray, add: int, threshold: int = 128) -> np.ndarray:
        table = np.arange(256)
        table = np.where(table < threshold, np.minimum(table + add, 255), table)
        return _lut(clip, table)

    @staticmethod
    def _contrast(clip: np.ndarray, factor: float) -> np.ndarray:
        mean = int(_gray(clip).mean() + 0.5)
        return _blend(np.full_like(clip, mean), clip, factor)

    def _rotate(self, clip: np.ndarray, degrees: float) -> np.ndarray:
        h, w = clip.shape[1:3]
        # Counter-clockwise for positive degrees, about the centre, as PIL's rotate.
        forward = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), degrees, 1.0)
        inverse = cv2.invertAffineTransform(forward)
        return np.stack(_warp(clip, inverse, self.fill, self._interp))

    def _affine(self, clip: np.ndarray, matrix: list[list[float]]) -> np.ndarray:
        """PIL's ``Image.transform(AFFINE, data)``: ``matrix`` maps output to input pixels.

        PIL evaluates the map at pixel centres (``x + 0.5``), OpenCV at pixel indices: shift
        the translation by ``0.5 * (row sum - 1)`` to convert.
        """
        m = np.asarray(matrix, np.float64)
        m[:, 2] += 0.5 * (m[:, 0] + m[:, 1] - 1.0)
        return np.stack(_warp(clip, m, self.fill, self._interp))

    def transform(self, results: dict) -> dict:
        """Augment ``results['imgs']``."""
        imgs = results["imgs"]
        if not imgs:
            return results
        clip = np.stack(imgs)  # (T, H, W, 3)
        if clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
            raise TypeError(
                f"VideoRandAugment needs H x W x 3 uint8 frames, got {clip.dtype} {clip.shape[1:]}"
            )
        for name, m, sign in self.draw():
            clip = self.apply(clip, name, m, sign)
        results["imgs"] = list(clip)
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_ops={self.num_ops}, magnitude={self.magnitude}, "
            f"magnitude_std={self.magnitude_std}, prob={self.prob}, ops={list(self.ops)}, "
            f"fill={self.fill}, interpolation={self.interpolation!r}, seed={self.seed})"
        )
