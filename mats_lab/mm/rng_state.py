"""``RngStateHook``: random states in checkpoints, so a resumed run trains exactly as an
uninterrupted one (same losses, same accuracy, on the same machine and thread count).

MMEngine 0.10.7 saves weights, optimizer, schedulers and the message hub, but no random state:
after a resume, dropout / drop-path masks, MAE masks and batch augmentations (mixup) drew other
numbers than the uninterrupted run. This hook keeps, per process rank:

* torch's CPU generator and every CUDA device's (when CUDA is initialised),
* numpy's and python's global generators,
* the ``torch.Generator`` of every model module that owns one (a module with a
  ``generator(device)`` method and a ``_generator`` attribute: ``VideoViT``'s token-selection
  draws, ``MATSPretrainer``'s masks), by module name.

The rule that makes it exact: **the random state at the first training iteration of every
epoch is the state at the end of the previous training epoch.** After each training epoch the
hook takes a snapshot (before ``CheckpointHook`` saves, which stores it in the checkpoint
under ``rng_states``); at the next training iteration it restores that snapshot, in the
uninterrupted run as in a resumed one (which restores the copy from the checkpoint, if the
checkpoint's iteration is the one resumed at). Whatever runs in between — validation, the
creation of DataLoader iterators (each draws a base seed from torch's generator), hooks — thus
changes no training draw, and a resumed run, which skips or repeats some of it, sees the same
numbers. The data pipeline is made exact separately (``EpochTaggedSampler``, see
:mod:`mats_lab.mm.samplers`); the data order is ``DefaultSampler``'s ``seed + epoch``.

With several ranks the snapshot is gathered from all of them (the checkpoint is written by
rank 0); a resume with another number of ranks restores nothing and warns. A checkpoint
loaded as ``load_from`` weights (a fine-tuning stage starting from a pre-training one) is
recognised by its iteration and its states are ignored. Checkpoints hold only tensors, ints,
floats, strings, lists and dicts here, so ``weights_only=True`` loading needs no new global.

Listed in ``mm_configs/_base_/default_runtime.py``'s ``custom_hooks``::

    custom_hooks = [dict(type='RngStateHook')]
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

__all__ = ["CHECKPOINT_KEY", "RngStateHook", "capture_rng_states", "restore_rng_states"]

#: Key of the hook's record in an MMEngine checkpoint.
CHECKPOINT_KEY = "rng_states"
_FORMAT = 1


def _model(runner_model: torch.nn.Module) -> torch.nn.Module:
    return getattr(runner_model, "module", runner_model)  # through DDP-style wrappers


def _generator_modules(model: torch.nn.Module) -> dict[str, Any]:
    """Modules owning a lazily made ``torch.Generator`` (``generator(device)`` + ``_generator``)."""
    return {
        name: module
        for name, module in model.named_modules()
        if callable(getattr(module, "generator", None)) and hasattr(module, "_generator")
    }


def capture_rng_states(model: torch.nn.Module) -> dict[str, Any]:
    """This process's random states, as tensors and plain values (``weights_only``-safe)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002  (global, on purpose)
    version, internal, gauss_next = random.getstate()
    generators = {}
    for name, module in _generator_modules(model).items():
        gen = module._generator
        if isinstance(gen, torch.Generator):
            generators[name] = {"device": str(gen.device), "state": gen.get_state()}
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "generators": generators,
    }


def restore_rng_states(model: torch.nn.Module, states: dict[str, Any]) -> None:
    """Put back states made by :func:`capture_rng_states` (tensors may be on any device).

    A module generator absent from ``states`` (not yet made when they were captured) is
    dropped, so it is made and seeded afresh on first use, as it was then.
    """
    torch.set_rng_state(states["torch"].cpu())
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])
    npy = states["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            "MT19937",
            npy["keys"].cpu().numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        )
    )
    py = states["python"]
    random.setstate((py["version"], tuple(py["internal"].tolist()), py["gauss_next"]))
    saved = states["generators"]
    for name, module in _generator_modules(model).items():
        if name not in saved:
            module._generator = None
            continue
        gen = module.generator(torch.device(saved[name]["device"]))
        if gen is not None:
            gen.set_state(saved[name]["state"].cpu())


@HOOKS.register_module()
class RngStateHook(Hook):
    """Snapshot random states after each training epoch, save them in checkpoints, restore
    them at the next training iteration (see the module docstring)."""

    # Before CheckpointHook (VERY_LOW) in after_train_epoch; first in before_train_iter.
    priority = "VERY_HIGH"

    def __init__(self) -> None:
        self._snapshot: dict[str, Any] | None = None  # {'iter', 'ranks'}: this run's own
        self._loaded: dict[str, Any] | None = None  # the same, from a loaded checkpoint

    def _record(self, runner: Any) -> dict[str, Any]:
        states = capture_rng_states(_model(runner.model))
        ranks = all_gather_object(states) if get_world_size() > 1 else [states]
        return {"format": _FORMAT, "iter": int(runner.iter), "ranks": ranks}

    def after_train_epoch(self, runner: Any) -> None:
        """Snapshot the states of every rank (collective: all ranks call it)."""
        self._snapshot = self._record(runner)

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Store the epoch-end snapshot (or, mid-epoch, the current states) in ``checkpoint``."""
        snapshot = self._snapshot
        if snapshot is None or snapshot["iter"] != runner.iter:
            if get_world_size() > 1:  # rank 0 alone saves: no collective here
                print_log(
                    "RngStateHook: a mid-epoch checkpoint of a distributed run gets no random "
                    "states; resuming from it is not exact",
                    logger="current",
                    level=logging.WARNING,
                )
                return
            snapshot = self._record(runner)
        checkpoint[CHECKPOINT_KEY] = snapshot

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Keep the checkpoint's states for the first training iteration (if it resumes)."""
        self._loaded = checkpoint.get(CHECKPOINT_KEY)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """At the iteration a snapshot was taken at (or a checkpoint resumed at): restore it."""
        pending = None
        for record in (self._loaded, self._snapshot):
            if record is not None and record["iter"] == runner.iter:
                pending = record
                break
        self._loaded = None  # a load_from checkpoint's states never apply later
        if pending is None:
            return
        self._snapshot = None
        ranks = pending["ranks"]
        if len(ranks) != get_world_size():
            print_log(
                f"RngStateHook: the checkpoint holds random states of {len(ranks)} ranks, this "
                f"run has {get_world_size()}: not restored, the resumed run is not exact",
                logger="current",
                level=logging.WARNING,
            )
            return
        restore_rng_states(_model(runner.model), ranks[get_rank()])
