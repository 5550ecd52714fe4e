"""Does masked pre-training learn anything on the embedded dataset? ``explained`` per epoch.

``MATSPretrainer`` logs ``explained`` = 1 - loss / (loss of predicting zeros) with every step
(:func:`mats_lab.models.mae.reconstruction_diagnostics`). This script trains pre-training
variants of the factorial study's recipe (patch 16, tubelet 4, centred clips, the tiny ViT)
with ``mats-lab train``, side by side, and prints each one's ``explained`` by epoch from
MMEngine's ``vis_data/scalars.json``::

    python benchmarks/mae_fit.py --out work_dirs/mae_fit                 # every variant, 20 epochs
    python benchmarks/mae_fit.py --variants tube,random50 --epochs 100
    python benchmarks/mae_fit.py --control                               # the positive control

``--control`` trains the same kind of model (a smaller ViT, 32x32 clips) for 400 steps on
clips whose every token is a copy of a per-clip pattern drawn from 4 fixed basis patterns:
there a hidden token is predictable from the visible ones, and ``explained`` has to climb
towards 1. It shows the diagnostic reads high when the objective is learnable, so a value near
0 on the real clips means the decoder learned nothing beyond zeros, not a broken measurement.

Each variant is one config written under ``--out`` (the study's pre-training config as its
``_base_``, the variant's settings and a cosine schedule over ``--epochs``), trained in its own
process with ``OMP_NUM_THREADS=--threads``, ``--parallel`` at a time. No shell is used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mats_lab.lab.progress import epoch_means  # noqa: E402 - after the path

BASE = REPO / "mm_configs" / "mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"
#: The factorial study's pre-training overrides (studies/keep_ratio_factorial.yaml).
STUDY_BACKBONE = dict(patch_size=16, tubelet_size=4, temporal_center=True)


@dataclass(frozen=True)
class Variant:
    masking: str
    visible_ratio: float
    keep_ratio: float = 1.0
    backbone: tuple[tuple[str, object], ...] = ()  # over STUDY_BACKBONE
    model: tuple[tuple[str, object], ...] = ()  # other MATSPretrainer arguments
    lr: float | None = None  # None: the config's (1.5e-3 at batch 16)


VARIANTS: dict[str, Variant] = {
    # the study's two recipes
    "mats": Variant("mats", 0.1, keep_ratio=0.3),
    "tube": Variant("tube", 0.1),
    # more of the clip visible, so a hidden token has visible neighbours in space and time
    "random50": Variant("random", 0.5),
    # the clip as given (background included): a hidden token's background is visible at
    # the same place in the other tubelet
    "random50-uncentred": Variant("random", 0.5, backbone=(("temporal_center", False),)),
    "random50-decoder256x2": Variant(
        "random",
        0.5,
        backbone=(("temporal_center", False),),
        model=(("decoder_dims", 256), ("decoder_depth", 2), ("decoder_heads", 4)),
    ),
    # smaller tokens: 384 values to predict per token instead of 3072
    "random50-patch8": Variant(
        "random",
        0.5,
        backbone=(("temporal_center", False), ("patch_size", 8), ("tubelet_size", 2)),
        model=(("decoder_dims", 128), ("decoder_heads", 4)),
    ),
    "random50-lr1e-4": Variant("random", 0.5, lr=1e-4),
}


def config_text(variant: Variant, epochs: int, seed: int) -> str:
    """An MMEngine config: the study's pre-training with the variant's settings."""
    backbone = {**STUDY_BACKBONE, "keep_ratio": variant.keep_ratio, **dict(variant.backbone)}
    model = {"masking": variant.masking, "visible_ratio": variant.visible_ratio}
    model |= dict(variant.model)
    lines = [
        f"_base_ = [{str(BASE)!r}]",
        f"model = dict(backbone=dict({_kwargs(backbone)}), {_kwargs(model)})",
        f"max_epochs = {epochs}",
        "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,"
        " val_interval=max_epochs + 1)",
        "param_scheduler = [",
        "    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,"
        " convert_to_iter_based=True),",
        "    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min_ratio=1e-5 / 1.5e-3,"
        " by_epoch=True,"
        " begin=1, end=max_epochs, convert_to_iter_based=True),",
        "]",
        "default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))",
        f"randomness = dict(seed={seed})",
    ]
    if variant.lr is not None:
        lines += [
            f"optim_wrapper = dict(optimizer=dict(lr={variant.lr!r}))",
            "auto_scale_lr = dict(enable=False)",
        ]
    return "\n".join(lines) + "\n"


def _kwargs(values: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def scalar_epoch_means(scalars_json: Path, key: str) -> dict[int, float]:
    """Mean of ``key`` per epoch over MMEngine's logged training lines."""
    records = [json.loads(text) for text in scalars_json.read_text().splitlines()]
    return epoch_means((int(r["epoch"]), r.get(key)) for r in records if "epoch" in r)


def train_variants(names: list[str], args: argparse.Namespace) -> dict[str, dict]:
    """Train the variants, ``args.parallel`` at a time; per variant its per-epoch figures."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    exe = Path(sys.executable).with_name("mats-lab")
    pending, running, results = list(names), [], {}
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            folder = args.out / name
            folder.mkdir(parents=True, exist_ok=True)
            config = folder / f"{name}.py"
            config.write_text(config_text(VARIANTS[name], args.epochs, args.seed))
            log = open(folder / "train.log", "w")  # noqa: SIM115 - closed when it ends
            command = [str(exe), "train", str(config), "--work-dir", str(folder / "run")]
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
            running.append((name, proc, log))
        name, proc, log = running.pop(0)
        proc.wait()
        log.close()
        if proc.returncode:
            raise SystemExit(f"error: variant {name} failed; see {args.out / name / 'train.log'}")
        scalars = sorted((args.out / name / "run").glob("*/vis_data/scalars.json"))[-1]
        keys = ("loss", "zero_mse", "explained")
        results[name] = {k: scalar_epoch_means(scalars, k) for k in keys}
    return results


def control(steps: int = 400, seed: int = 0) -> list[tuple[int, float]]:
    """``explained`` on fresh clips while training on clips whose tokens are predictable."""
    import torch
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope

    import mats_lab.mm  # noqa: F401 - registers MATSPretrainer

    init_default_scope("mmaction")
    torch.manual_seed(seed)
    data = torch.Generator().manual_seed(seed + 1)
    basis = torch.randn(4, 3, 8, 8, 8, generator=torch.Generator().manual_seed(seed + 2))
    model = MODELS.build(
        dict(
            type="MATSPretrainer",
            backbone=dict(
                type="MATSVisionTransformer",
                img_size=32,
                patch_size=8,
                embed_dims=64,
                depth=2,
                num_heads=4,
                num_frames=8,
                keep_ratio=1.0,
            ),
            masking="random",
            visible_ratio=0.5,
            decoder_dims=64,
            decoder_depth=1,
            decoder_heads=2,
            seed=seed,
            data_preprocessor=dict(
                type="ActionDataPreprocessor", mean=[0, 0, 0], std=[1, 1, 1], format_shape="NCTHW"
            ),
        )
    )

    def clips(n: int) -> torch.Tensor:  # (n, 1, C, T, 32, 32): one pattern tiled 4 x 4
        coefficients = torch.randn(n, 4, generator=data)
        pattern = torch.einsum("nk,kctij->nctij", coefficients, basis)  # (n, C, T, 8, 8)
        return pattern.repeat(1, 1, 1, 4, 4)[:, None]

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    curve = []
    for step in range(steps + 1):
        if step % 100 == 0:
            with torch.no_grad():
                curve.append((step, float(model(clips(64), mode="loss")["explained"])))
        if step < steps:
            loss = model(clips(16), mode="loss")["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="per training process")
    parser.add_argument("--parallel", type=int, default=2, help="trainings at a time")
    parser.add_argument("--out", type=Path, default=REPO / "work_dirs" / "mae_fit")
    parser.add_argument("--control", action="store_true", help="only the positive control")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.control:
        curve = control(seed=args.seed)
        for step, explained in curve:
            print(f"control  step {step:4d}  explained {explained:+.4f}")
        result: dict = {"control": curve}
    else:
        names = [n.strip() for n in args.variants.split(",") if n.strip()]
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            print(f"error: unknown variant(s) {', '.join(unknown)}; choose from "
                  f"{', '.join(VARIANTS)}", file=sys.stderr)  # fmt: skip
            return 2
        if args.epochs < 2:
            print("error: --epochs must be >= 2 (warm-up epoch + cosine)", file=sys.stderr)
            return 2
        result = train_variants(names, args)
        marks = sorted({1, 2, 5, 10, args.epochs} & set(range(1, args.epochs + 1)))
        print("variant | " + " | ".join(f"explained ep {e}" for e in marks) + " | loss / zero_mse")
        for name, figures in result.items():
            last = args.epochs
            cells = [f"{figures['explained'].get(e, float('nan')):+.4f}" for e in marks]
            print(f"{name} | " + " | ".join(cells)
                  + f" | {figures['loss'].get(last, float('nan')):.4f} / "
                  f"{figures['zero_mse'].get(last, float('nan')):.4f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
