"""Motion-synth rendering: the pure part of :mod:`mats_lab.data.synth`.

Samples one clip's scene (cluttered static background, static and jittering distractors, one
mover whose motion is the label) from that clip's own ``numpy.random.Generator`` and renders
it with anti-aliased shapes, as ``(T, H, W, 3) uint8`` frames. No file I/O: writing videos and
building dataset folders is :mod:`mats_lab.data.synth`'s job.

One file although it passes 400 lines: every line here decides the pixels of the dataset
(``GENERATOR_VERSION`` in :mod:`mats_lab.data.synth` must change with any of them), so the
whole renderer is read, and versioned, as one unit.

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CLASSES",
    "FLIP_LABEL_MAPS",
    "SHAPES",
    "SPLITS",
    "Scene",
    "Sprite",
    "clip_seed",
    "mover_masks",
    "mover_track",
    "render_clip",
    "render_frame",
    "render_scene",
    "sample_background",
    "sample_scene",
]

#: Class names; the label of a clip is its index here. A preset takes a prefix: the four
#: axis directions, then the four diagonals, then grow / shrink (the default's 10 classes),
#: then the circles, whose turning sense needs three positions in time to tell apart (only
#: the ``large`` preset has them). Every prefix a preset takes is closed under each flip.
CLASSES: tuple[str, ...] = (
    "right",
    "left",
    "up",
    "down",
    "up-right",
    "down-left",
    "up-left",
    "down-right",
    "grow",
    "shrink",
    "clockwise",
    "counterclockwise",
)

#: Unit step of each straight-line class in image coordinates (x right, y down).
_DIRECTIONS: dict[str, tuple[int, int]] = {
    "right": (1, 0),
    "left": (-1, 0),
    "up": (0, -1),
    "down": (0, 1),
    "up-right": (1, -1),
    "down-left": (-1, 1),
    "up-left": (-1, -1),
    "down-right": (1, 1),
}

# What each flip of a clip turns a class into (image coordinates: y points down, so a circle
# seen in a mirror turns the other way; played backwards, every motion reverses).
_MIRROR_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "horizontal": (
        ("right", "left"),
        ("up-right", "up-left"),
        ("down-left", "down-right"),
        ("clockwise", "counterclockwise"),
    ),
    "vertical": (
        ("up", "down"),
        ("up-right", "down-right"),
        ("down-left", "up-left"),
        ("clockwise", "counterclockwise"),
    ),
    "temporal": (
        ("right", "left"),
        ("up", "down"),
        ("up-right", "down-left"),
        ("up-left", "down-right"),
        ("clockwise", "counterclockwise"),
        ("grow", "shrink"),
    ),
    # x <-> y: a mirror in the main diagonal.
    "transpose": (
        ("right", "down"),
        ("left", "up"),
        ("up-right", "down-left"),
        ("clockwise", "counterclockwise"),
    ),
}


def _label_map(pairs: tuple[tuple[str, str], ...]) -> tuple[int, ...]:
    swap = {a: b for pair in pairs for a, b in (pair, pair[::-1])}
    return tuple(CLASSES.index(swap.get(name, name)) for name in CLASSES)


#: ``FLIP_LABEL_MAPS[axis][c]``: the class of a class-``c`` clip flipped along ``axis``
#: (``horizontal``, ``vertical``, ``temporal``), the ``label_map`` of the ``MotionFlip``
#: transform. Every preset's classes are a prefix of :data:`CLASSES` closed under each map.
FLIP_LABEL_MAPS: dict[str, tuple[int, ...]] = {
    axis: _label_map(pairs) for axis, pairs in _MIRROR_PAIRS.items()
}

SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Shapes for the mover and the distractors alike, so appearance never tells which one moves.
SHAPES: tuple[str, ...] = (
    "disk",
    "square",
    "diamond",
    "triangle",
    "ring",
    "cross",
    "bar",
    "hexagon",
)

#: The ``blob`` sprite (the smooth style's only shape; not in :data:`SHAPES`, which the
#: cluttered style draws from): Gaussian opacity with sigma = radius / ``BLOB_SHARPNESS``,
#: drawn out to ``BLOB_REACH`` radii (opacity there exp(-0.5 * (1.5 * 2.5)^2) < 0.001).
BLOB_SHARPNESS = 1.5
BLOB_REACH = 2.5

# Object radii as fractions of min(H, W). Every object (mover or distractor, any class) has a
# radius in this range, and grow/shrink sweep nearly all of it, so size in one frame says little.
_RADIUS_RANGE = (0.05, 0.2)


# --------------------------------------------------------------------------------------------
# Scene sampling: every random choice of one clip, drawn from that clip's own Generator.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sprite:
    """One shape and where it is in every frame."""

    shape: str  # one of SHAPES
    angle: float  # rotation in radians, constant over time
    colour: np.ndarray  # (3,) float in [0, 1]
    stripe_colour: np.ndarray | None  # (3,) float, or None for a solid fill
    stripe_period: float  # stripe period in radius units (ignored for a solid fill)
    track: np.ndarray  # (T, 3) float: centre x, centre y, radius, in pixels, per frame


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one clip; :func:`render_scene` is a pure function of it."""

    label: int
    background: np.ndarray  # (H, W, 3) float32 in [0, 1]
    distractors: tuple[Sprite, ...]  # static: their tracks are constant
    jitterers: tuple[Sprite, ...]  # class-independent random jitter
    mover: Sprite  # the object whose motion is the label
    frozen_frame: int | None  # static control: every output frame is this frame; else None

    @property
    def num_frames(self) -> int:
        return self.mover.track.shape[0]


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def _object_colour(rng: np.random.Generator) -> np.ndarray:
    # Objects are saturated and bright-ish, the background muted: every object is visible, and
    # mover and distractors come from the same distribution.
    return _hsv(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.55, 1.0))


def _background_colour(rng: np.random.Generator) -> np.ndarray:
    return _hsv(rng.random(), rng.uniform(0.0, 0.6), rng.uniform(0.15, 0.75))


def sample_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A cluttered static background: gradient, colour blobs, stripes, noise.

    Returns ``(H, W, 3) float32`` in ``[0, 1]``.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    side = float(min(height, width))
    # Gradient between two colours along a random direction.
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (x * np.cos(theta) + y * np.sin(theta)) / side
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    c0, c1 = _background_colour(rng), _background_colour(rng)
    img = c0 + ramp[..., None] * (c1 - c0)
    # Soft blobs.
    for _ in range(int(rng.integers(3, 9))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        sigma = rng.uniform(0.05, 0.25) * side
        alpha = rng.uniform(0.3, 0.8) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
        img += alpha[..., None] * (_background_colour(rng) - img)
    # Stripes in a random orientation.
    if rng.random() < 0.6:
        phi = rng.uniform(0, np.pi)
        period = rng.uniform(0.1, 0.4) * side
        wave = np.sin(2 * np.pi * (x * np.cos(phi) + y * np.sin(phi)) / period + rng.uniform(0, 6))
        img += rng.uniform(0.1, 0.25) * wave[..., None] * (_background_colour(rng) - 0.5)
    # Coarse noise texture (blocky, up-sampled) and fine pixel noise.
    block = int(rng.integers(4, 9))
    coarse = rng.normal(0, 1, (height // block + 1, width // block + 1, 3)).astype(np.float32)
    coarse = coarse.repeat(block, axis=0).repeat(block, axis=1)[:height, :width]
    img += rng.uniform(0.04, 0.1) * coarse
    img += rng.uniform(0.01, 0.04) * rng.normal(0, 1, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _sprite(rng: np.random.Generator, track: np.ndarray) -> Sprite:
    """Appearance of one object (any role), given its track ``(T, 3)``."""
    striped = rng.random() < 0.35
    return Sprite(
        shape=SHAPES[int(rng.integers(len(SHAPES)))],
        angle=float(rng.uniform(0, 2 * np.pi)),
        colour=_object_colour(rng),
        stripe_colour=_object_colour(rng) if striped else None,
        stripe_period=float(rng.uniform(0.5, 1.0)),
        track=track,
    )


def _radius(rng: np.random.Generator, side: float) -> float:
    return float(rng.uniform(*_RADIUS_RANGE) * side)


def _still_track(rng: np.random.Generator, frames: int, height: int, width: int) -> np.ndarray:
    side = float(min(height, width))
    r = _radius(rng, side)
    cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
    return np.tile(np.array([cx, cy, r], dtype=np.float64), (frames, 1))


def _jitter_track(rng: np.random.Generator, frames: int, height: int, width: int) -> np.ndarray:
    """A mean-reverting random walk around a random point: motion with no direction."""
    track = _still_track(rng, frames, height, width)
    # A sub-pixel wobble (stationary std ~ 0.007 * side): it makes "any pixel that changes" a
    # poor motion detector without competing with the mover's motion for the label.
    step = 0.004 * min(height, width)
    offset = np.zeros(2)
    for t in range(frames):
        track[t, :2] += offset
        offset = 0.8 * offset + rng.normal(0, step, 2)
    return track


def mover_track(
    rng: np.random.Generator,
    label: int,
    frames: int,
    height: int,
    width: int,
    radius_range: tuple[float, float] = _RADIUS_RANGE,
) -> np.ndarray:
    """Trajectory of the moving object for class ``label``.

    Start point, speed, radius and circle size are random within ranges chosen so that the
    marginal position/size in one frame is (nearly) the same for every class.

    Returns ``(T, 3) float64``: centre x, centre y, radius in pixels. Image coordinates: x to
    the right, y downwards, so an increasing angle turns clockwise on screen.
    """
    name = CLASSES[label]
    side = float(min(height, width))
    lo, hi = (f * side for f in radius_range)
    frac = np.linspace(0.0, 1.0, frames)  # (T,) constant speed over the whole clip
    track = np.empty((frames, 3))
    if name in _DIRECTIONS:
        r = float(rng.uniform(lo, hi))
        ux, uy = _DIRECTIONS[name]
        # Travel 0.3-0.55 of the frame along each moving axis (the same distance for both on a
        # diagonal), from a start drawn so the whole path stays inside the frame; a still axis
        # gets a small slant so no path is axis-exact. Mirrored starts keep the marginal
        # position of one frame the same for every direction.
        for axis, (u, extent) in enumerate(((ux, width), (uy, height))):
            if u:
                dist = rng.uniform(0.3, 0.55) * side
                start = rng.uniform(r, extent - r - dist)
                pos = start + dist * frac
                track[:, axis] = pos if u > 0 else extent - pos
            else:
                drift = rng.uniform(-0.1, 0.1) * 0.4 * side
                base = rng.uniform(r + abs(drift), extent - r - abs(drift))
                track[:, axis] = base + drift * (frac - 0.5) * 2
        track[:, 2] = r
    elif name in ("clockwise", "counterclockwise"):
        r = float(rng.uniform(lo, hi))
        rho = rng.uniform(0.12, 0.22) * side
        cx = rng.uniform(rho + r, width - rho - r)
        cy = rng.uniform(rho + r, height - rho - r)
        turns = rng.uniform(0.6, 1.0)
        sign = 1.0 if name == "clockwise" else -1.0
        theta = rng.uniform(0, 2 * np.pi) + sign * 2 * np.pi * turns * frac
        track[:, 0] = cx + rho * np.cos(theta)
        track[:, 1] = cy + rho * np.sin(theta)
        track[:, 2] = r
    elif name in ("grow", "shrink"):
        small, big = rng.uniform(lo, lo * 1.2), rng.uniform(hi / 1.2, hi)
        radius = small * (big / small) ** frac  # geometric: looks like steady approach
        if name == "shrink":
            radius = radius[::-1]
        track[:, 0] = rng.uniform(big, width - big)
        track[:, 1] = rng.uniform(big, height - big)
        track[:, 2] = radius
    else:  # pragma: no cover - CLASSES and this function change together
        raise ValueError(f"no trajectory for class {name!r}")
    return track


def sample_scene(
    rng: np.random.Generator,
    label: int,
    frames: int,
    height: int,
    width: int,
    *,
    distractors: tuple[int, int] = (3, 6),
    moving_distractors: int = 1,
    static: bool = False,
) -> Scene:
    """Draw one clip's scene. ``static`` changes only ``frozen_frame``: the draws are the same,
    so a static clip is exactly one frame of its motion twin, repeated."""
    background = sample_background(rng, height, width)
    still = tuple(
        _sprite(rng, _still_track(rng, frames, height, width))
        for _ in range(int(rng.integers(distractors[0], distractors[1] + 1)))
    )
    jitter = tuple(
        _sprite(rng, _jitter_track(rng, frames, height, width)) for _ in range(moving_distractors)
    )
    mover = _sprite(rng, mover_track(rng, label, frames, height, width))
    frozen = int(rng.integers(frames))  # drawn in both modes to keep the streams identical
    return Scene(label, background, still, jitter, mover, frozen if static else None)


# --------------------------------------------------------------------------------------------
# Rendering: pure numpy, anti-aliased shapes drawn inside their bounding boxes.
# --------------------------------------------------------------------------------------------

# Outward unit normals of the triangle's and hexagon's edges.
_TRI = np.array([[np.cos(a), np.sin(a)] for a in np.deg2rad([90, 210, 330])])
_HEX = np.array([[np.cos(a), np.sin(a)] for a in np.deg2rad(np.arange(0, 360, 60))])


def _shape_field(shape: str, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, float]:
    """A field that is <= 1 inside the shape, for coordinates in radius units; and the field's
    slope in radius units, used to turn it into ~1 pixel of anti-aliased edge."""
    if shape == "disk":
        return np.hypot(u, v), 1.0
    if shape == "square":
        return np.maximum(abs(u), abs(v)) / 0.8, 0.8
    if shape == "diamond":
        return abs(u) + abs(v), 1 / np.sqrt(2)
    if shape == "triangle":
        return np.max(_TRI[:, 0, None, None] * u + _TRI[:, 1, None, None] * v, 0) / 0.5, 0.5
    if shape == "ring":
        return abs(np.hypot(u, v) - 0.7) / 0.3, 0.3
    if shape == "cross":
        arm_h = np.maximum(abs(u), abs(v) / 0.3)
        arm_v = np.maximum(abs(u) / 0.3, abs(v))
        return np.minimum(arm_h, arm_v), 0.3
    if shape == "bar":
        return np.maximum(abs(u), abs(v) / 0.4), 0.4
    if shape == "hexagon":
        return np.max(_HEX[:, 0, None, None] * u + _HEX[:, 1, None, None] * v, 0) / 0.87, 0.87
    raise ValueError(f"unknown shape {shape!r}")


def _coverage(
    sprite: Sprite, t: int, height: int, width: int
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Fraction of each pixel covered by ``sprite`` at frame ``t``, inside its bounding box.

    Returns the box ``(rows, cols)``, the ``(h, w) float32`` coverage in ``[0, 1]`` and the
    ``(h, w)`` coordinate along the shape's own x axis in radius units (for stripes).
    """
    cx, cy, r = sprite.track[t]
    reach = BLOB_REACH * r if sprite.shape == "blob" else r  # a blob's tail runs past r
    y0, y1 = max(int(cy - reach) - 2, 0), min(int(cy + reach) + 3, height)
    x0, x1 = max(int(cx - reach) - 2, 0), min(int(cx + reach) + 3, width)
    y, x = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    # Pixel centres relative to the object centre, rotated into the shape's frame, in radii.
    dx, dy = (x + 0.5 - cx) / r, (y + 0.5 - cy) / r
    if sprite.shape == "blob":  # Gaussian opacity, sigma = r / BLOB_SHARPNESS: no edge at all
        cover = np.exp(-0.5 * BLOB_SHARPNESS**2 * (dx * dx + dy * dy)).astype(np.float32)
        return (slice(y0, y1), slice(x0, x1)), cover, dx
    c, s = np.cos(sprite.angle), np.sin(sprite.angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    field, slope = _shape_field(sprite.shape, u, v)
    cover = np.clip((1.0 - field) * slope * r + 0.5, 0.0, 1.0).astype(np.float32)
    return (slice(y0, y1), slice(x0, x1)), cover, u


def _draw(canvas: np.ndarray, sprite: Sprite, t: int) -> None:
    """Alpha-blend ``sprite`` at frame ``t`` onto ``canvas`` ``(H, W, 3) float32`` in place."""
    box, cover, u = _coverage(sprite, t, *canvas.shape[:2])
    fill = np.broadcast_to(sprite.colour, (*cover.shape, 3))
    if sprite.stripe_colour is not None:
        stripe = (np.sin(2 * np.pi * u / sprite.stripe_period) > 0)[..., None]
        fill = np.where(stripe, sprite.stripe_colour, sprite.colour)
    region = canvas[box]
    region += cover[..., None] * (fill - region)


def render_frame(scene: Scene, t: int, still: np.ndarray | None = None) -> np.ndarray:
    """Frame ``t`` of the scene's motion (ignores ``frozen_frame``).

    ``still`` is the background with the static distractors already drawn (``(H, W, 3)
    float32``), to avoid redrawing it for every frame. Returns ``(H, W, 3) uint8``.
    """
    if still is None:
        still = _still_layer(scene)
    canvas = still.copy()
    for sprite in scene.jitterers:
        _draw(canvas, sprite, t)
    _draw(canvas, scene.mover, t)  # last: the mover is never hidden
    return np.round(canvas * 255.0).astype(np.uint8)


def _still_layer(scene: Scene) -> np.ndarray:
    canvas = scene.background.copy()
    for sprite in scene.distractors:
        _draw(canvas, sprite, 0)
    return canvas


def render_scene(scene: Scene) -> np.ndarray:
    """All frames of a clip. Returns ``(T, H, W, 3) uint8``.

    In the static control every frame equals motion frame ``frozen_frame``.
    """
    still = _still_layer(scene)
    if scene.frozen_frame is not None:
        frame = render_frame(scene, scene.frozen_frame, still)
        return np.repeat(frame[None], scene.num_frames, axis=0)
    return np.stack([render_frame(scene, t, still) for t in range(scene.num_frames)])


def mover_masks(scene: Scene, min_cover: float = 0.0) -> np.ndarray:
    """Pixels the moving object covers by more than ``min_cover`` in each output frame (the
    default: every pixel it touches; a ``blob`` touches its whole box, so its body is better
    taken at ``min_cover=0.5``). Returns ``(T, H, W) bool``."""
    height, width = scene.background.shape[:2]
    masks = np.zeros((scene.num_frames, height, width), dtype=bool)
    for t in range(scene.num_frames):
        source = t if scene.frozen_frame is None else scene.frozen_frame
        box, cover, _ = _coverage(scene.mover, source, height, width)
        masks[t][box] = cover > min_cover
    return masks


def clip_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The seed of clip ``index`` of ``split``: independent of the counts and of other clips."""
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(SPLITS.index(split), int(index)))


def render_clip(
    seed: int | np.random.SeedSequence,
    label: int,
    *,
    frames: int = 32,
    height: int = 64,
    width: int = 64,
    distractors: tuple[int, int] = (3, 6),
    moving_distractors: int = 1,
    static: bool = False,
) -> np.ndarray:
    """Sample and render one clip. Returns ``(T, H, W, 3) uint8``."""
    rng = np.random.default_rng(seed)
    scene = sample_scene(
        rng,
        label,
        frames,
        height,
        width,
        distractors=distractors,
        moving_distractors=moving_distractors,
        static=static,
    )
    return render_scene(scene)
