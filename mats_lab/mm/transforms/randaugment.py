"""RandAugment for video (:class:`VideoRandAugment`): timm's RandAugment with one draw per
clip, built on the pure ops of :mod:`mats_lab.data.augment_ops`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from mats_lab.data.augment_ops import (
    auto_contrast,
    blend,
    equalize,
    gray,
    lut,
    sharpness_degenerate,
    warp,
)
from mats_lab.mm.transforms._rng import _LazyGenerator

__all__ = ["RAND_AUGMENT_OPS", "TIMM_INCREASING_OPS", "VideoRandAugment"]

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
            "AutoContrast": lambda: auto_contrast(clip),
            "Equalize": lambda: equalize(clip),
            "Invert": lambda: 255 - clip,
            "Rotate": lambda: self._rotate(clip, sign * level * 30.0),
            "PosterizeIncreasing": lambda: self._posterize(clip, 4 - int(level * 4)),
            "Posterize": lambda: self._posterize(clip, int(level * 4)),
            "SolarizeIncreasing": lambda: self._solarize(clip, 256 - int(level * 256)),
            "Solarize": lambda: self._solarize(clip, int(level * 256)),
            "SolarizeAdd": lambda: self._solarize_add(clip, int(level * 110)),
            "ColorIncreasing": lambda: blend(gray(clip), clip, self._inc(level, sign)),
            "Color": lambda: blend(gray(clip), clip, level * 1.8 + 0.1),
            "ContrastIncreasing": lambda: self._contrast(clip, self._inc(level, sign)),
            "Contrast": lambda: self._contrast(clip, level * 1.8 + 0.1),
            "BrightnessIncreasing": lambda: blend(
                np.zeros_like(clip), clip, self._inc(level, sign)
            ),
            "Brightness": lambda: blend(np.zeros_like(clip), clip, level * 1.8 + 0.1),
            "SharpnessIncreasing": lambda: blend(
                sharpness_degenerate(clip), clip, self._inc(level, sign)
            ),
            "Sharpness": lambda: blend(sharpness_degenerate(clip), clip, level * 1.8 + 0.1),
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
        return lut(clip, table)

    @staticmethod
    def _contrast(clip: np.ndarray, factor: float) -> np.ndarray:
        mean = int(gray(clip).mean() + 0.5)
        return blend(np.full_like(clip, mean), clip, factor)

    def _rotate(self, clip: np.ndarray, degrees: float) -> np.ndarray:
        h, w = clip.shape[1:3]
        # Counter-clockwise for positive degrees, about the centre, as PIL's rotate.
        forward = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), degrees, 1.0)
        inverse = cv2.invertAffineTransform(forward)
        return np.stack(warp(clip, inverse, self.fill, self._interp))

    def _affine(self, clip: np.ndarray, matrix: list[list[float]]) -> np.ndarray:
        """PIL's ``Image.transform(AFFINE, data)``: ``matrix`` maps output to input pixels.

        PIL evaluates the map at pixel centres (``x + 0.5``), OpenCV at pixel indices: shift
        the translation by ``0.5 * (row sum - 1)`` to convert.
        """
        m = np.asarray(matrix, np.float64)
        m[:, 2] += 0.5 * (m[:, 0] + m[:, 1] - 1.0)
        return np.stack(warp(clip, m, self.fill, self._interp))

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
