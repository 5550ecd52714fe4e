"""Picture of a token selection: the frames a model saw, kept tokens bright, dropped ones dim.

Pure numpy + matplotlib (no torch, no mm*): it takes what :mod:`mats_lab.trial.token_view`
computed and draws it. The picture is a mosaic of panels, one per tubelet (its first frame),
in temporal order. In a panel each token's patch is shown at full brightness when the token is
kept and multiplied by :data:`DIM` when it is dropped, with thin grid lines on the patch
borders. With adaptive frame selection the candidate tubelets the selector dropped are shown
too, in grey (dimmed) with a red border, so one sees which frames the model never looked at.

Geometry, in pixels (exact, so a caller can predict the PNG size with :func:`picture_size`):
each panel is the frame enlarged ``zoom = ceil(MIN_PANEL_PX / H)`` times (nearest neighbour;
at least 1), panels sit ``GAP`` apart and from the border in rows of at most ``max_cols``, each
with a ``LABEL_PX`` text band below it, under a ``TITLE_PX`` title band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "DIM",
    "GAP",
    "LABEL_PX",
    "MIN_PANEL_PX",
    "TITLE_PX",
    "kept_mask",
    "picture_size",
    "render_token_picture",
]

DIM = 0.3  # brightness factor of a dropped token's patch
GAP = 6  # pixels between panels and around the mosaic
TITLE_PX = 40  # title band (two lines of text)
LABEL_PX = 16  # text band under each panel
MIN_PANEL_PX = 160  # small frames are enlarged to at least this height
_DPI = 100
_GRID_RGB = np.array([70, 70, 70], np.uint8)  # patch borders
_DROPPED_RGB = np.array([220, 40, 40], np.uint8)  # border of a candidate frame not selected
_BORDER_PX = 3  # width of that border
_BACKGROUND = 255


def kept_mask(kept: Sequence[int] | np.ndarray, grid: Sequence[int]) -> np.ndarray:
    """``(t, h, w)`` bool from raster token indices ``n = t*h*w + row*w + col``."""
    t, h, w = (int(v) for v in grid)
    mask = np.zeros(t * h * w, dtype=bool)
    idx = np.asarray(kept, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= mask.size):
        raise ValueError(f"kept token indices must lie in [0, {mask.size}) for grid {t, h, w}")
    mask[idx] = True
    return mask.reshape(t, h, w)


def _zoom(frame_h: int) -> int:
    return max(1, math.ceil(MIN_PANEL_PX / frame_h))


def picture_size(num_panels: int, frame_h: int, frame_w: int, max_cols: int = 8) -> tuple[int, int]:
    """``(width, height)`` in pixels of the PNG :func:`render_token_picture` writes."""
    zoom = _zoom(frame_h)
    cols = min(num_panels, max_cols)
    rows = math.ceil(num_panels / cols)
    width = cols * (frame_w * zoom + GAP) + GAP
    height = TITLE_PX + rows * (frame_h * zoom + LABEL_PX + GAP) + GAP
    return width, height


def _panel(frame: np.ndarray, kept: np.ndarray, selected: bool, zoom: int) -> np.ndarray:
    """One enlarged panel, ``(H*zoom, W*zoom, 3)`` uint8.

    Args:
        frame: ``(H, W, 3)`` uint8.
        kept: ``(h, w)`` bool; ignored when the tubelet was not selected.
        selected: whether frame selection kept this tubelet.
    """
    height, width = frame.shape[:2]
    h, w = kept.shape
    ph, pw = height // h, width // w
    img = frame.astype(np.float32)
    if selected:
        factor = np.where(kept, 1.0, DIM).astype(np.float32)  # (h, w)
        img *= np.repeat(np.repeat(factor, ph, 0), pw, 1)[..., None]  # (H, W, 1)
    else:
        img = np.repeat(img.mean(-1, keepdims=True) * DIM, 3, -1)  # grey and dim
    img = np.repeat(np.repeat(img, zoom, 0), zoom, 1)  # nearest-neighbour enlargement
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    for row in range(1, h):  # thin lines on the patch borders
        out[row * ph * zoom, :] = _GRID_RGB
    for col in range(1, w):
        out[:, col * pw * zoom] = _GRID_RGB
    if not selected:
        b = _BORDER_PX
        out[:b], out[-b:], out[:, :b], out[:, -b:] = (_DROPPED_RGB,) * 4
    return out


def render_token_picture(
    frames: np.ndarray,
    kept: np.ndarray,
    out: str | Path,
    *,
    selected: Sequence[bool] | np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    title: str = "",
    max_cols: int = 8,
) -> tuple[int, int]:
    """Write the token picture as a PNG.

    Args:
        frames: ``(P, H, W, 3)`` uint8 RGB, one frame per panel (a tubelet's first frame).
        kept: ``(P, h, w)`` bool, the kept tokens of each panel's tubelet; ``H`` and ``W``
            must be multiples of ``h`` and ``w`` (the patch size).
        out: PNG path (its folder is created).
        selected: ``(P,)`` bool, False for a candidate tubelet that frame selection dropped
            (drawn grey with a red border); ``None``: all selected.
        labels: one short text per panel (e.g. ``"frame 120"``).
        title: text above the panels (a newline gives a second line).
        max_cols: panels per row.

    Returns:
        ``(width, height)`` of the PNG, equal to :func:`picture_size`.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    frames = np.asarray(frames)
    kept = np.asarray(kept, dtype=bool)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (P, H, W, 3) uint8, got {frames.dtype} {frames.shape}")
    num, height, width = frames.shape[:3]
    if num == 0:
        raise ValueError("no frames to draw")
    if kept.ndim != 3 or kept.shape[0] != num:
        raise ValueError(f"kept must be ({num}, h, w), got {kept.shape}")
    if height % kept.shape[1] or width % kept.shape[2]:
        raise ValueError(
            f"frame size {height}x{width} is not a multiple of the token grid {kept.shape[1:]}"
        )
    chosen = np.ones(num, bool) if selected is None else np.asarray(selected, dtype=bool)
    if chosen.shape != (num,):
        raise ValueError(f"selected must have {num} entries, got {chosen.shape}")
    if labels is not None and len(labels) != num:
        raise ValueError(f"labels must have {num} entries, got {len(labels)}")

    zoom = _zoom(height)
    cols = min(num, max_cols)
    pic_w, pic_h = picture_size(num, height, width, max_cols)
    mosaic = np.full((pic_h, pic_w, 3), _BACKGROUND, np.uint8)
    panel_h, panel_w = height * zoom, width * zoom
    corners = []
    for i in range(num):
        row, col = divmod(i, cols)
        x = GAP + col * (panel_w + GAP)
        y = TITLE_PX + row * (panel_h + LABEL_PX + GAP)
        mosaic[y : y + panel_h, x : x + panel_w] = _panel(frames[i], kept[i], chosen[i], zoom)
        corners.append((x, y))

    fig = Figure(figsize=(pic_w / _DPI, pic_h / _DPI), dpi=_DPI)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(mosaic, interpolation="nearest", extent=(0, pic_w, pic_h, 0))
    ax.set_xlim(0, pic_w)
    ax.set_ylim(pic_h, 0)
    ax.axis("off")
    if title:
        ax.text(GAP, TITLE_PX / 2, title, fontsize=9, va="center", ha="left", clip_on=True)
    for i, (x, y) in enumerate(corners):
        text = labels[i] if labels is not None else f"tubelet {i}"
        color = "black" if chosen[i] else "#c82828"
        ax.text(
            x,
            y + panel_h + LABEL_PX / 2,
            text,
            fontsize=7,
            va="center",
            ha="left",
            color=color,
            clip_on=True,
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=_DPI, format="png")
    return pic_w, pic_h
