"""Does a checkpoint's frozen backbone carry class information? A linear probe on its features.

Each model is the fine-tuning config's ``Recognizer3D`` (built through MMAction2's registry,
seeded), either left at its random initialisation (``none``) or with a checkpoint's
``backbone.*`` weights loaded (an MMEngine checkpoint of a ``MATSPretrainer`` or of a
``Recognizer3D``). Its backbone, frozen (eval mode, no gradients), encodes every clip of the
train and val splits through the config's *val* pipeline (no augmentation) and the model's
own ``data_preprocessor``; a multinomial logistic regression fitted on the train features
is scored on the val features::

    python benchmarks/linear_probe.py none runs/pretrain/epoch_20.pth other.pth
    python benchmarks/linear_probe.py none ckpt.pth --config mm_configs/OTHER.py --seed 1
    python benchmarks/linear_probe.py none ckpt.pth --json probe.json
    python benchmarks/linear_probe.py none --cfg-options val_dataloader.batch_size=8

Features: all ``N`` tokens after the encoder blocks (keep ratio 1.0 whatever the config says:
the probe measures the representation, not the token selection), before the head, pooled
over tokens to ``(mean, mean of absolute values)``, ``2 D`` values per clip. Why not the mean
alone: the tiny configs centre each clip in time (``temporal_center``), so still pixels (most
of a clip) reach the encoder as exactly 0 and a moving object as a signed pattern (+ where it
is, - where it was); averaged over all tokens and frames, features of opposite sign cancel
and the few moving tokens are diluted among the many still ones. The mean of absolute values
keeps each channel's magnitude, which cannot cancel. Features are standardised with the train
split's statistics.

Probe: ``softmax(x W^T + b)`` fitted full batch with L-BFGS (``--steps`` iterations at most,
cross-entropy plus ``l2 / 2 * |W|^2``), in float64, from a start drawn with an explicit
seeded generator. The objective is strictly convex, so the seed only moves the start.

One line per checkpoint: train and val top-1, the feature size, the clips and the seconds
(feature extraction and fit). A checkpoint that is missing, unreadable or lacks the
backbone's weights stops the script with exit status 2 before any clip is decoded.
Checkpoints are read by MMEngine's ``load_checkpoint``, which :mod:`mats_lab.mm` routes
through ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import typer
from torch import Tensor

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mats_lab.cli.common import parse_cfg_options  # noqa: E402

CONFIG = REPO / "mm_configs" / "videomae_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
RANDOM_INIT = "none"
BATCH = 16


class ProbeError(Exception):
    """A checkpoint (or an argument) the probe cannot use; the message names it."""


@dataclass
class ProbeResult:
    name: str
    checkpoint: str | None
    train_top1: float
    val_top1: float
    feature_dims: int
    train_clips: int
    val_clips: int
    seconds: float


# -- the pure parts ---------------------------------------------------------------------------


def pool_tokens(tokens: Tensor) -> Tensor:
    """``(B, N, D)`` token features → ``(B, 2 D)``: their mean over tokens, then the mean of
    their absolute values (see the module docstring for why both)."""
    return torch.cat([tokens.mean(1), tokens.abs().mean(1)], dim=1)


def standardise(train: Tensor, val: Tensor) -> tuple[Tensor, Tensor]:
    """Centre and scale both with the train statistics.

    Args:
        train: ``(N, F)``; val: ``(M, F)``.

    Returns:
        ``(N, F)`` and ``(M, F)``; a feature constant over ``train`` is only centred.
    """
    mean = train.mean(0)
    std = train.std(0, unbiased=False)
    scale = torch.where(std > 1e-6, std, torch.ones_like(std))
    return (train - mean) / scale, (val - mean) / scale


def fit_probe(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    l2: float = 1e-3,
    steps: int = 200,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Multinomial logistic regression, full batch L-BFGS, in float64.

    Args:
        features: ``(N, F)`` (standardised); labels: ``(N,)`` int64 in ``[0, num_classes)``.
        num_classes: ``K``.
        l2: weight of ``|W|^2 / 2`` beside the mean cross-entropy (the bias is not penalised).
        steps: most L-BFGS iterations.
        seed: seeds the generator of the start ``W`` (``N(0, 0.01^2)``; ``b = 0``).

    Returns:
        ``(W (K, F), b (K,))``, float64.
    """
    x = features.double()
    generator = torch.Generator().manual_seed(seed)
    weight = 0.01 * torch.randn(num_classes, x.shape[1], generator=generator, dtype=x.dtype)
    weight.requires_grad_(True)
    bias = torch.zeros(num_classes, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=steps,
        history_size=20,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, labels) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def accuracy(weight: Tensor, bias: Tensor, features: Tensor, labels: Tensor) -> float:
    """Top-1 of the probe ``(W (K, F), b (K,))`` on ``features (N, F)``, ``labels (N,)``."""
    predicted = (features.to(weight.dtype) @ weight.T + bias).argmax(1)
    return float((predicted == labels).double().mean())


# -- models and data --------------------------------------------------------------------------


def build_model(cfg: Any, seed: int) -> Any:
    """The config's model at its seeded random initialisation, in eval mode.

    The backbone initialises itself at construction (its ``init_weights`` only loads an
    ``init_cfg``, which the tiny configs do not have); the head is not used.
    """
    from mmaction.registry import MODELS

    torch.manual_seed(seed)
    return MODELS.build(cfg.model).eval()


def load_backbone(model: Any, path: Path) -> None:
    """Load ``path``'s ``backbone.*`` weights into ``model``; raise :class:`ProbeError` (naming
    the file) unless it holds every backbone tensor the features use, in the right shape
    (``fc_norm``, after the pooling, is not used; a pre-trainer has none)."""
    from mmengine.runner import load_checkpoint

    if not path.is_file():
        raise ProbeError(f"{path}: no such checkpoint file")
    try:
        checkpoint = load_checkpoint(
            model, str(path), map_location="cpu", strict=False, logger="silent"
        )
    except Exception as exc:  # a corrupt or foreign file: torch.load raises many kinds
        raise ProbeError(f"{path}: cannot be read as a checkpoint ({exc})") from exc
    state = checkpoint.get("state_dict", checkpoint)
    shapes = {
        key.removeprefix("module."): tuple(value.shape)
        for key, value in state.items()
        if isinstance(value, Tensor)
    }
    if not any(key.startswith("backbone.") for key in shapes):
        raise ProbeError(f"{path}: holds no 'backbone.*' weights")
    wrong = [
        key
        for key, value in model.backbone.state_dict().items()
        if not key.startswith("fc_norm.") and shapes.get(f"backbone.{key}") != tuple(value.shape)
    ]
    if wrong:
        listed = ", ".join(f"backbone.{key}" for key in wrong[:4])
        raise ProbeError(
            f"{path}: {len(wrong)} backbone tensors missing or of another shape ({listed}"
            f"{', ...' if len(wrong) > 4 else ''}); not a checkpoint of this config's backbone"
        )


def probe_datasets(cfg: Any) -> tuple[Any, Any]:
    """``(train, val)`` datasets, both through the val pipeline in test mode."""
    from mmaction.registry import DATASETS

    from mats_lab.trial.configs import loader_datasets

    found = dict(loader_datasets(cfg))
    if "train_dataloader" not in found or "val_dataloader" not in found:
        raise ProbeError(f"{cfg.filename}: needs a train and a val dataloader")
    train = copy.deepcopy(dict(found["train_dataloader"]))
    val = copy.deepcopy(dict(found["val_dataloader"]))
    train["pipeline"] = copy.deepcopy(val["pipeline"])
    train["test_mode"] = True
    return DATASETS.build(train), DATASETS.build(val)


def batches(dataset: Any, size: int) -> Any:
    """The dataset's samples in order, ``size`` at a time, as MMEngine collates them."""
    from mmengine.dataset import pseudo_collate

    for start in range(0, len(dataset), size):
        yield pseudo_collate([dataset[i] for i in range(start, min(start + size, len(dataset)))])


def clip_features(backbone: Any, inputs: Tensor) -> Tensor:
    """Pooled features of every token of normalised clips.

    Args:
        backbone: a MATS / VideoMAE ``VideoViT``.
        inputs: ``(B, C, T, H, W)``.

    Returns:
        ``(B, 2 D)``: :func:`pool_tokens` of the ``(B, N, D)`` encoder output, all tokens.
    """
    prep = backbone.prepare(inputs, with_scores=False)
    tokens = backbone.encode(backbone.positioned_tokens(prep, None))  # (B, N, D)
    return pool_tokens(tokens)


@torch.no_grad()
def encode_split(model: Any, dataset: Any) -> tuple[Tensor, Tensor]:
    """``(features (N, 2 D), labels (N,))`` of a split; several views of a clip averaged."""
    features, labels = [], []
    for data in batches(dataset, BATCH):
        data = model.data_preprocessor(data, False)
        inputs = data["inputs"]  # (B, V, C, T, H, W)
        views = inputs.reshape(-1, *inputs.shape[-4:])
        pooled = clip_features(model.backbone, views)
        features.append(pooled.reshape(inputs.shape[0], -1, pooled.shape[-1]).mean(1))
        labels.extend(int(sample.gt_label) for sample in data["data_samples"])
    return torch.cat(features).float(), torch.tensor(labels, dtype=torch.int64)


def probe_one(
    name: str,
    model: Any,
    data: tuple[Any, Any],
    num_classes: int,
    args: argparse.Namespace,
) -> ProbeResult:
    start = time.monotonic()
    train_x, train_y = encode_split(model, data[0])
    val_x, val_y = encode_split(model, data[1])
    train_x, val_x = standardise(train_x, val_x)
    weight, bias = fit_probe(train_x, train_y, num_classes, args.l2, args.steps, args.seed)
    return ProbeResult(
        name=name,
        checkpoint=None if name == RANDOM_INIT else str(Path(name).resolve()),
        train_top1=accuracy(weight, bias, train_x, train_y),
        val_top1=accuracy(weight, bias, val_x, val_y),
        feature_dims=train_x.shape[1],
        train_clips=len(train_y),
        val_clips=len(val_y),
        seconds=time.monotonic() - start,
    )


def run(args: argparse.Namespace) -> list[ProbeResult]:
    from mmengine.registry import init_default_scope

    import mats_lab.mm  # noqa: F401  (registers the project's modules, safe checkpoint loads)
    from mats_lab.models.vit import VideoViT
    from mats_lab.trial.configs import load_config

    init_default_scope("mmaction")
    cfg = load_config(args.config, parse_cfg_options(args.cfg_options))
    models = []
    for name in args.checkpoints:  # every checkpoint checked before any clip is decoded
        model = build_model(cfg, args.seed)
        if not isinstance(getattr(model, "backbone", None), VideoViT):
            raise ProbeError(f"{args.config}: the model has no MATS / VideoMAE ViT backbone")
        if name != RANDOM_INIT:
            load_backbone(model, Path(name))
        models.append((name, model))
    data = probe_datasets(cfg)
    num_classes = len(data[0].metainfo["classes"])
    results = []
    for name, model in models:
        result = probe_one(name, model, data, num_classes, args)
        print(
            f"{result.name}  train top-1 {result.train_top1:.2f}  val top-1 "
            f"{result.val_top1:.2f}  (features {result.feature_dims}, "
            f"{result.train_clips} + {result.val_clips} clips, {result.seconds:.1f} s)",
            flush=True,
        )
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "checkpoints",
        nargs="+",
        metavar="CHECKPOINT",
        help=f"'{RANDOM_INIT}' (seeded random initialisation) or an MMEngine checkpoint path",
    )
    parser.add_argument("--config", type=Path, default=CONFIG, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=0, help="model init and probe start")
    parser.add_argument("--l2", type=float, default=1e-3, help="probe weight decay")
    parser.add_argument("--steps", type=int, default=200, help="most L-BFGS iterations")
    parser.add_argument(
        "--cfg-options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dotted config override (checked; a Python literal value), repeatable",
    )
    parser.add_argument("--json", type=Path, help="write the results here (a list of dicts)")
    args = parser.parse_args(argv)
    try:
        results = run(args)
    except ProbeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:  # parse_cfg_options has printed the error
        return exc.exit_code
    if args.json:
        record = [
            {**asdict(r), "config": str(args.config), "seed": args.seed, "l2": args.l2}
            for r in results
        ]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
