"""Mirroring a clip in space or time, and what that does to a motion label.

A horizontal flip turns "right" into "left", a vertical flip "up" into "down", playing a clip
backwards turns "grow" into "shrink": for motion classes a flip is a label-preserving
augmentation once the label is mapped to its mirror image. :func:`flip_frames` does the
flip, :func:`check_label_map` validates a label map (a permutation that is its own inverse,
since flipping twice gives the clip back).

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["FLIP_AXES", "check_label_map", "flip_frames"]

#: ``horizontal`` mirrors x (left-right), ``vertical`` mirrors y (up-down), ``temporal``
#: reverses the frame order, ``transpose`` swaps x and y (a mirror in the main diagonal; an
#: ``H x W`` frame becomes ``W x H``).
FLIP_AXES: tuple[str, ...] = ("horizontal", "vertical", "temporal", "transpose")


def flip_frames(frames: Sequence[np.ndarray], axis: str) -> list[np.ndarray]:
    """Mirror a clip.

    Args:
        frames: ``T`` frames, each ``(H, W)`` or ``(H, W, C)``.
        axis: one of :data:`FLIP_AXES`.

    Returns:
        ``T`` frames: each mirrored (contiguous copies) for a spatial axis, ``(W, H [, C])``
        for ``transpose``; the same frames in reverse order for ``temporal``.
    """
    if axis == "temporal":
        return list(frames[::-1])
    if axis == "horizontal":
        return [np.ascontiguousarray(f[:, ::-1]) for f in frames]
    if axis == "vertical":
        return [np.ascontiguousarray(f[::-1]) for f in frames]
    if axis == "transpose":
        return [np.ascontiguousarray(np.swapaxes(f, 0, 1)) for f in frames]
    raise ValueError(f"axis must be one of {FLIP_AXES}, got {axis!r}")


def check_label_map(label_map: Sequence[int]) -> tuple[int, ...]:
    """Validate a flip's label map: ``label_map[c]`` is the class of class ``c`` flipped.

    It must be a permutation of ``0 .. n-1`` that is its own inverse
    (``label_map[label_map[c]] == c``): flipping twice gives the clip, so the label, back.

    Returns:
        The map as a tuple of ints.

    Raises:
        ValueError: naming the first entry that breaks the rule.
    """
    mapped = tuple(int(c) for c in label_map)
    n = len(mapped)
    if n == 0:
        raise ValueError("label_map is empty")
    if sorted(mapped) != list(range(n)):
        raise ValueError(f"label_map must be a permutation of 0..{n - 1}, got {list(mapped)}")
    for c, d in enumerate(mapped):
        if mapped[d] != c:
            raise ValueError(
                f"label_map must be its own inverse: class {c} -> {d} but {d} -> {mapped[d]}"
            )
    return mapped
