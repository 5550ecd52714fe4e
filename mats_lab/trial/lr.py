"""The learning rate a stage starts from: the recipe's base, scaled with the total batch.

The official VideoMAE / EVEREST scripts give ``lr`` (and ``min_lr``, ``warmup_lr``) for a total
batch of 256 and multiply by ``devices x batch per device / 256``. mats-lab's configs say the
same with MMEngine's own switch, ``auto_scale_lr = dict(enable=True, base_batch_size=256)``:
``Runner.scale_lr`` multiplies every parameter group's ``lr`` by ``world_size x
train_dataloader.batch_size / base_batch_size`` before the schedulers are built. The minimum
and warm-up LRs follow because the schedulers are written as ratios (``eta_min_ratio``,
``start_factor``). The ``lr`` knob sets the base; the ``batch_size`` knob the per-device batch.

:func:`runner_lrs` computes the starting LRs through that same ``Runner.scale_lr`` for any
number of processes without starting them; :func:`lr_summary` is the record in
``resolved.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from mmengine.config import Config

__all__ = ["lr_summary", "runner_lrs"]


def _base_lr(cfg: Config) -> float | None:
    optimizer = (cfg.get("optim_wrapper") or {}).get("optimizer")
    return float(optimizer["lr"]) if isinstance(optimizer, Mapping) and "lr" in optimizer else None


def lr_summary(cfg: Config, world_size: int) -> dict[str, Any]:
    """``{base_lr, base_batch_size, scaled, batch_per_device, total_batch, lr}`` of ``cfg``
    trained on ``world_size`` processes (``lr``: the peak LR before layer decay)."""
    auto = cfg.get("auto_scale_lr") or {}
    loader = cfg.get("train_dataloader") or {}
    per_device = loader.get("batch_size") if isinstance(loader, Mapping) else None
    base = _base_lr(cfg)
    scaled = bool(auto.get("enable", False))
    total = world_size * int(per_device) if per_device is not None else None
    lr = base
    if scaled and base is not None and total is not None:
        lr = base * total / float(auto["base_batch_size"])
    return {
        "base_lr": base,
        "base_batch_size": auto.get("base_batch_size") if scaled else None,
        "scaled": scaled,
        "batch_per_device": per_device,
        "total_batch": total,
        "lr": lr,
    }


def runner_lrs(cfg: Config, world_size: int, model: Any = None) -> list[float]:
    """The parameter groups' LRs after MMEngine's ``Runner.scale_lr`` for ``world_size``
    processes: the optimizer wrapper is built from ``cfg`` for ``model`` (default: built from
    ``cfg.model``) and scaled by the very method the Runner calls, on a stand-in that answers
    what it asks (the train loader's config, the world size, a logger)."""
    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    init_default_scope(cfg.get("default_scope", "mmaction"))
    if model is None:
        from mmaction.registry import MODELS

        model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    stand_in = SimpleNamespace(
        _train_dataloader=cfg.train_dataloader,
        world_size=world_size,
        param_schedulers=None,
        logger=MMLogger.get_current_instance(),
    )
    Runner.scale_lr(stand_in, wrapper, cfg.get("auto_scale_lr"))
    return [float(group["lr"]) for group in wrapper.optimizer.param_groups]
