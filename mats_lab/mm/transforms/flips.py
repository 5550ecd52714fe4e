""":class:`MotionFlip`: mirror a clip in x, y or time and relabel it, for motion classes.

mmaction's ``Flip`` maps labels too (``flip_label_map``) but draws from the global
``np.random`` and can neither reverse time nor transpose; this one owns a seeded generator and
does all four axes. For the embedded dataset, ``label_map='motion-synth'`` takes the map from
:data:`mats_lab.data.synth.FLIP_LABEL_MAPS` (valid for every size preset, whose classes are a
prefix of the full list closed under each flip)::

    dict(type='MotionFlip', axis='horizontal', label_map='motion-synth'),
    dict(type='MotionFlip', axis='transpose', label_map='motion-synth'),

Any other dataset gives its own list: ``label_map[c]`` is the class of a flipped class-``c``
clip.

Training pipelines only: a flip that changes the label has no place at test time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from mats_lab.data.flips import FLIP_AXES, check_label_map, flip_frames
from mats_lab.data.synth_render import FLIP_LABEL_MAPS
from mats_lab.mm.transforms._rng import _LazyGenerator

__all__ = ["NAMED_LABEL_MAPS", "MotionFlip"]

#: Label maps by name, per axis: ``label_map='motion-synth'`` in a config.
NAMED_LABEL_MAPS: dict[str, dict[str, tuple[int, ...]]] = {"motion-synth": FLIP_LABEL_MAPS}


@TRANSFORMS.register_module()
class MotionFlip(_LazyGenerator, BaseTransform):
    """With probability ``flip_ratio``, flip the clip along ``axis`` and map its label.

    Place it after decoding and frame selection, before ``FormatShape``. A ``temporal`` flip
    reverses each clip of ``clip_len`` frames on its own (``num_clips`` clips), together with
    its ``frame_inds``, so frames keep their indices. A ``transpose`` turns ``H x W`` frames
    into ``W x H`` ones (``img_shape`` follows), so square frames or a later ``Resize`` to a
    fixed size keep the batch uniform.

    Required Keys:

        - imgs (list of ``H x W [x C]`` frames)
        - label (an int class index)
        - clip_len, num_clips (optional; ``temporal`` only: the clips reversed one by one)
        - frame_inds (optional; ``temporal`` only)

    Modified Keys:

        - imgs
        - label (``label_map[label]`` when flipped)
        - frame_inds (reversed with the frames, ``temporal`` only)
        - img_shape (``transpose`` only, when present)

    Added Keys:

        - flip_<axis> (bool: whether this clip was flipped)

    Args:
        axis (str): ``horizontal`` (mirror x), ``vertical`` (mirror y), ``temporal``
            (play backwards) or ``transpose`` (swap x and y).
        label_map (Sequence[int] | str): ``label_map[c]`` is the class of a flipped class-``c``
            clip; a permutation that is its own inverse (checked). Or the name of a known
            map (``'motion-synth'``: the embedded dataset's).
        flip_ratio (float): probability of flipping. Defaults to 0.5.
        seed (int | None): seed of the generator outside DataLoader workers. Defaults to None.

    Raises:
        ValueError: at construction, a bad ``axis``, ``flip_ratio`` or ``label_map``; when
            called, a label that is not one int inside the map, keypoints / boxes in the
            results (they would need flipping too), or (``temporal``) ``imgs`` that do not
            hold ``num_clips x clip_len`` frames.
    """

    def __init__(
        self,
        axis: str,
        label_map: Sequence[int] | str,
        flip_ratio: float = 0.5,
        seed: int | None = None,
    ) -> None:
        # One stream of draws per axis: the flips of one pipeline must not flip together.
        super().__init__(seed, stream=f"{type(self).__name__}/{axis}")
        if axis not in FLIP_AXES:
            raise ValueError(f"axis must be one of {FLIP_AXES}, got {axis!r}")
        if not 0.0 <= flip_ratio <= 1.0:
            raise ValueError(f"flip_ratio must be in [0, 1], got {flip_ratio}")
        if isinstance(label_map, str):
            if label_map not in NAMED_LABEL_MAPS:
                known = ", ".join(repr(name) for name in NAMED_LABEL_MAPS)
                raise ValueError(f"unknown label_map name {label_map!r}; known: {known}")
            label_map = NAMED_LABEL_MAPS[label_map][axis]
        self.axis = axis
        self.label_map = list(check_label_map(label_map))
        self.flip_ratio = flip_ratio

    def _relabel(self, label: object, where: str) -> int:
        value = np.asarray(label)
        if value.size != 1 or not np.issubdtype(value.dtype, np.integer):
            raise ValueError(f"{where}: MotionFlip needs one int label, got {label!r}")
        index = int(value.reshape(-1)[0])
        last = len(self.label_map) - 1
        if not 0 <= index <= last:
            raise ValueError(f"{where}: label {index} is outside label_map (classes 0..{last})")
        return self.label_map[index]

    def _reverse(self, results: dict) -> None:
        imgs = results["imgs"]
        clip_len = int(results.get("clip_len", len(imgs)))
        num_clips = int(results.get("num_clips", 1))
        if clip_len * num_clips != len(imgs):
            raise ValueError(
                f"{results.get('filename', '<no filename>')}: {len(imgs)} imgs for "
                f"num_clips={num_clips} x clip_len={clip_len}"
            )
        order = np.arange(len(imgs)).reshape(num_clips, clip_len)[:, ::-1].reshape(-1)
        results["imgs"] = [imgs[i] for i in order]
        if "frame_inds" in results:
            frame_inds = np.asarray(results["frame_inds"]).reshape(-1)
            if frame_inds.size == len(imgs):
                results["frame_inds"] = frame_inds[order]

    def transform(self, results: dict) -> dict:
        """Flip (or not) and relabel."""
        where = str(results.get("filename", "<no filename>"))
        flip = bool(self._generator().random() < self.flip_ratio)
        results[f"flip_{self.axis}"] = flip
        if not flip:
            return results
        for key in ("keypoint", "gt_bboxes", "proposals"):
            if key in results:
                raise ValueError(f"{where}: MotionFlip cannot flip {key!r}")
        results["label"] = self._relabel(results["label"], where)
        if self.axis == "temporal":
            self._reverse(results)
        else:
            results["imgs"] = flip_frames(results["imgs"], self.axis)
            if self.axis == "transpose" and "img_shape" in results:
                height, width = results["img_shape"]
                results["img_shape"] = (width, height)
        return results

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(axis={self.axis!r}, label_map={self.label_map!r}, "
            f"flip_ratio={self.flip_ratio!r}, seed={self.seed!r})"
        )
