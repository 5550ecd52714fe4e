"""The ``smooth`` style of motion-synth: scenes whose masked tokens are predictable.

The cluttered style (:mod:`mats_lab.data.synth_render`) is built so that one frame says nothing
about the class, and it does that job; but its textured background and sharp-edged shapes make
the masked-autoencoder targets unpredictable from any visible token
(``benchmarks/target_oracle.py``), so no pre-training on it learns. A smooth scene keeps the
labels and the trajectories (:func:`~mats_lab.data.synth_render.mover_track`, the same classes
and flips) and changes the appearance only: a background of one gradient and two soft colour
clouds, and every object a Gaussian ``blob`` of a random bright colour (two static distractors,
no jittering one). A moving blob's change between frames is then a smooth pattern along its
path, which a model can predict from the tokens before and after it.

Everything is drawn from the clip's own ``numpy.random.Generator``; rendering is
:func:`~mats_lab.data.synth_render.render_scene`'s. Only numpy is imported here.
"""

from __future__ import annotations

import numpy as np

from mats_lab.data.synth_render import Scene, Sprite, mover_track

__all__ = ["SMOOTH_RADIUS_RANGE", "sample_smooth_background", "sample_smooth_scene"]

#: The mover's radius as a fraction of min(H, W) (3.0-6.1 pixels at 32x32): big enough that
#: its Gaussian spans several pixels, small enough to move clear of itself in a clip.
SMOOTH_RADIUS_RANGE = (0.095, 0.19)
#: Static distractors' radius range, as a fraction of min(H, W).
_DISTRACTOR_RADIUS = (0.0625, 0.156)


def sample_smooth_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A gradient between two muted colours with two soft colour clouds on it.

    Returns ``(H, W, 3) float32`` in ``[0, 1]``.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    side = float(min(height, width))
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (x * np.cos(theta) + y * np.sin(theta)) / side
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    c0, c1 = rng.uniform(0.1, 0.6, 3), rng.uniform(0.1, 0.6, 3)
    img = c0 + ramp[..., None] * (c1 - c0)
    for _ in range(2):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        sigma = rng.uniform(0.1, 0.3) * side
        alpha = 0.6 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
        img += alpha[..., None] * (rng.uniform(0.1, 0.6, 3) - img)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _blob(track: np.ndarray, colour: np.ndarray) -> Sprite:
    return Sprite("blob", 0.0, colour.astype(np.float32), None, 1.0, track)


def sample_smooth_scene(
    rng: np.random.Generator,
    label: int,
    frames: int,
    height: int,
    width: int,
    *,
    distractors: tuple[int, int] = (2, 2),
    static: bool = False,
) -> Scene:
    """Draw one smooth clip's scene (``static``: the same draws, frozen at one frame)."""
    background = sample_smooth_background(rng, height, width)
    side = float(min(height, width))
    still = []
    for _ in range(int(rng.integers(distractors[0], distractors[1] + 1))):
        r = float(rng.uniform(*_DISTRACTOR_RADIUS) * side)
        centre = (rng.uniform(0, width), rng.uniform(0, height), r)
        still.append(_blob(np.tile(np.array(centre), (frames, 1)), rng.uniform(0.5, 1.0, 3)))
    track = mover_track(rng, label, frames, height, width, radius_range=SMOOTH_RADIUS_RANGE)
    mover = _blob(track, rng.uniform(0.5, 1.0, 3))
    frozen = int(rng.integers(frames))  # drawn in both modes to keep the streams identical
    return Scene(label, background, tuple(still), (), mover, frozen if static else None)
