"""Candidate sampling for adaptive frame selection (METHOD §4) and its pixel-difference
ablation: :class:`CandidateSampleFrames` delivers ``candidate_ratio`` times more frames, in
tubelets spread over the video; :class:`PixelDiffFrameSelect` keeps the ones that move most."""

from __future__ import annotations

import math

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from mats_lab.mm.transforms._rng import _LazyGenerator

__all__ = ["CandidateSampleFrames", "PixelDiffFrameSelect", "candidate_frame_count"]


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
