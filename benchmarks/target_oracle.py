"""How predictable are the pre-training's targets? Oracles that see the true neighbours.

``benchmarks/mae_fit.py`` shows the study's pre-trainings explaining about 0 % of their loss.
That is either a model that fails to learn or a target that no model could predict from the
visible tokens. This script separates the two without training anything: it cuts the
embedded clips (sampled as the 8x4x1 pipeline samples them) into the normalised-pixel targets
the MAE loss uses (:func:`~mats_lab.core.patchify.normalized_pixel_targets`, centred in time
with :func:`~mats_lab.core.motion.temporal_center` when the encoder is) and scores simple
predictors that are handed the *true* values of a token's neighbours:

- ``previous``: the token at the same place one tubelet earlier;
- ``interpolate``: the mean of the tokens one tubelet before and after (needs 3 tubelets);
- ``space``: the mean of the 4 spatial neighbours in the same tubelet.

For each, ``explained`` = 1 - sum (target - prediction)^2 / sum target^2, the quantity the
pre-training logs, over the tokens the oracle predicts; and ``scaled``: the same with the
prediction multiplied by the one global factor that fits best (the squared cosine between
targets and predictions, so it is >= 0 and reads a sign-flipped copy as a copy). An oracle
near or below 0 means that neighbour carries no usable copy of the target.

``--rank K`` adds a bound that holds for any model: the decoder's last layer is a linear map
from ``K`` features (the decoder width, 64 in the tiny configs), so its predictions lie in a
``K``-dimensional subspace (plus a bias) and cannot explain more than the share of the targets'
energy in the best such subspace (their top ``K`` singular values), however well it learns::

    python benchmarks/target_oracle.py                     # the default dataset, 4 settings
    python benchmarks/target_oracle.py --root data/motion_synth --clips 400 --interval 1

Only numpy, torch and the project's own target functions are used; no model is trained.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mats_lab.core.motion import temporal_center  # noqa: E402 - after the path
from mats_lab.core.patchify import normalized_pixel_targets  # noqa: E402

ORACLES = ("previous", "interpolate", "space")


@dataclass(frozen=True)
class Setting:
    """One way of cutting targets: tubelet ``t_s``, patch ``p``, centred in time or not."""

    tubelet: int
    patch: int
    center: bool

    @property
    def name(self) -> str:
        how = "centred" if self.center else "as given"
        return f"tubelet {self.tubelet}, patch {self.patch}, {how}"


#: The study's pre-training (studies/keep_ratio_factorial.yaml), the same uncentred, and the
#: configs' own patch 8 / tubelet 2 both ways.
SETTINGS = (
    Setting(4, 16, True),
    Setting(4, 16, False),
    Setting(2, 8, True),
    Setting(2, 8, False),
)


def target_grid(video: torch.Tensor, setting: Setting) -> torch.Tensor:
    """The MAE targets of every token, on their grid.

    Args:
        video: ``(B, C, T, H, W)`` float clips.

    Returns:
        ``(B, t, h, w, P)`` with ``t = T / t_s``, ``h = H / p``, ``w = W / p`` and
        ``P = t_s * p * p * C``: each token's per-tubelet normalised pixels (a still token of a
        centred clip is all zeros).
    """
    batch, _, frames, height, width = video.shape
    source = temporal_center(video) if setting.center else video
    flat = normalized_pixel_targets(source, setting.tubelet, setting.patch)  # (B, N, P)
    t, h, w = frames // setting.tubelet, height // setting.patch, width // setting.patch
    return flat.reshape(batch, t, h, w, flat.shape[-1])


def _neighbour_sum(grid: torch.Tensor) -> torch.Tensor:
    """``(B, t, h, w, P)`` -> the same shape: each token's sum over its 4 spatial neighbours
    (those inside the grid)."""
    padded = torch.nn.functional.pad(grid, (0, 0, 1, 1, 1, 1))  # zeros around h and w
    up, down = padded[:, :, :-2, 1:-1], padded[:, :, 2:, 1:-1]
    left, right = padded[:, :, 1:-1, :-2], padded[:, :, 1:-1, 2:]
    return up + down + left + right


def oracle_predictions(grid: torch.Tensor, oracle: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(targets, predictions)``, both ``(M, P)``: the tokens ``oracle`` predicts, and its
    prediction of each from the true neighbours in ``grid`` ``(B, t, h, w, P)``."""
    if oracle == "previous":
        return grid[:, 1:].flatten(0, 3), grid[:, :-1].flatten(0, 3)
    if oracle == "interpolate":
        if grid.shape[1] < 3:
            raise ValueError(f"interpolate needs >= 3 tubelets, got {grid.shape[1]}")
        return grid[:, 1:-1].flatten(0, 3), ((grid[:, :-2] + grid[:, 2:]) / 2).flatten(0, 3)
    if oracle == "space":
        total = _neighbour_sum(grid)  # (B, t, h, w, P)
        count = _neighbour_sum(torch.ones_like(grid[..., :1]))  # (B, t, h, w, 1): 2 to 4
        return grid.flatten(0, 3), (total / count).flatten(0, 3)
    raise ValueError(f"oracle must be one of {ORACLES}, got {oracle!r}")


def explained(targets: torch.Tensor, predictions: torch.Tensor) -> tuple[float, float]:
    """``(explained, scaled)`` of ``predictions`` for ``targets`` (same shape); NaN when every
    target is zero (nothing to explain)."""
    t, p = targets.double(), predictions.double()
    energy = float(t.pow(2).sum())
    if energy == 0.0:
        return float("nan"), float("nan")
    raw = 1.0 - float((t - p).pow(2).sum()) / energy
    dot, norm = float((t * p).sum()), float(p.pow(2).sum())
    scaled = dot * dot / (norm * energy) if norm > 0 else 0.0
    return raw, scaled


def subspace_share(targets: torch.Tensor, rank: int) -> float:
    """The largest share of ``targets`` ``(M, P)``'s energy that predictions confined to a
    ``rank``-dimensional affine subspace can explain: the top ``rank`` squared singular values
    of the targets after removing their mean row (the bias), plus the mean row's own energy,
    over the total. NaN when every target is zero."""
    t = targets.double()
    energy = float(t.pow(2).sum())
    if energy == 0.0:
        return float("nan")
    mean = t.mean(0, keepdim=True)
    singular = torch.linalg.svdvals(t - mean)
    kept = float(singular[:rank].pow(2).sum()) + t.shape[0] * float(mean.pow(2).sum())
    return kept / energy


def score(video: torch.Tensor, setting: Setting) -> dict[str, tuple[float, float]]:
    """Every oracle's ``(explained, scaled)`` on ``video`` ``(B, C, T, H, W)`` cut as
    ``setting``; oracles the grid cannot serve (too few tubelets) are left out."""
    grid = target_grid(video, setting)
    result = {}
    for oracle in ORACLES:
        if oracle == "interpolate" and grid.shape[1] < 3:
            continue
        result[oracle] = explained(*oracle_predictions(grid, oracle))
    return result


def load_clips(root: Path, clips: int, frames: int, interval: int) -> torch.Tensor:
    """The first ``clips`` training clips of the dataset in ``root`` as the pipeline samples
    them at test time (``frames`` frames, every ``interval``-th, centred in the video).

    Returns:
        ``(clips, 3, frames, H, W)`` float32 in ``[0, 255]``.
    """
    from mats_lab.data.clip_cache import ClipCache, ensure_clip_cache

    cache = ClipCache(ensure_clip_cache(root))
    listed = (root / "train_list_videos.txt").read_text().split("\n")
    paths = [root / line.split()[0] for line in listed if line.strip()][:clips]
    length = cache.frames.shape[1]
    span = (frames - 1) * interval + 1
    if span > length:
        raise ValueError(f"{frames} frames every {interval} need {span}; the clips have {length}")
    start = (length - span) // 2
    rows = [cache.rows[str(p.resolve())] for p in paths]
    picked = np.stack([cache.frames[r, start : start + span : interval] for r in rows])
    return torch.from_numpy(picked).float().permute(0, 4, 1, 2, 3)  # (B, C, T, H, W)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "data" / "motion_synth")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--interval", type=int, default=4, help="frame interval (8x4x1: 4)")
    parser.add_argument("--rank", type=int, default=64, help="decoder width for the bound")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if not (args.root / "train_list_videos.txt").is_file():
        print(f"error: {args.root}: no dataset (run `mats-lab data synth` first)", file=sys.stderr)
        return 2
    video = load_clips(args.root, args.clips, args.frames, args.interval)
    print(f"{video.shape[0]} clips of {args.frames} frames every {args.interval} from {args.root}")
    print("setting | " + " | ".join(f"{o} (scaled)" for o in ORACLES)
          + f" | rank-{args.rank} bound")  # fmt: skip
    result = {}
    for setting in SETTINGS:
        if args.frames % setting.tubelet or video.shape[-1] % setting.patch:
            continue
        figures: dict = score(video, setting)
        bound = subspace_share(target_grid(video, setting).flatten(0, 3), args.rank)
        cells = [
            f"{figures[o][0]:+.3f} ({figures[o][1]:.3f})" if o in figures else "n/a"
            for o in ORACLES
        ]
        print(f"{setting.name} | " + " | ".join(cells) + f" | {bound:.3f}")
        result[setting.name] = {**figures, f"rank-{args.rank} bound": bound}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
