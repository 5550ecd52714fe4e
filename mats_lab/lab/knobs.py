"""The short names a study may use for the MATS knobs, and what they stand for.

A study variable is either one of these aliases or a dotted config key (``model.backbone.depth``).
The aliases are expanded inside the trial process (``mats_lab.mm.knobs``), which sees the
loaded config and knows, for example, every pipeline that samples frames. This module is the
single list of names, so that a study file is checked without importing torch or mmengine.
"""

from __future__ import annotations

__all__ = ["ALIASES", "is_config_key", "RESERVED"]

#: alias -> what it sets (documentation shown by ``mats-lab sweep --help`` and the schema errors).
ALIASES: dict[str, str] = {
    "keep_ratio": "model.backbone.keep_ratio: fraction of all N tokens kept by motion "
    "(fine-tuning: tokens the encoder sees; pre-training: the candidate pool)",
    "visible_ratio": "model.visible_ratio: fraction of all N tokens the pre-training encoder sees",
    "masking": "model.masking: pre-training masking, 'mats' | 'tube' | 'random'",
    "frame_budget": "frames the model sees: model.backbone.num_frames and clip_len of every "
    "frame sampler in the train/val/test pipelines",
    "candidate_ratio": "model.backbone.candidate_ratio and the samplers' candidate_ratio "
    "(adaptive frame selection, METHOD §4)",
    "scorer": "model.backbone.scorer: 'embedding' | 'pixel' | 'motion_vectors'",
    "epochs": "train_cfg.max_epochs, with the LR schedule stretched to match",
    "lr": "optim_wrapper.optimizer.lr",
    "batch_size": "train_dataloader.batch_size",
}

#: Names a study cannot use for its own variables: the trial's seed is a parameter of its own.
RESERVED = frozenset({"seed"})


def is_config_key(name: str) -> bool:
    """True for a dotted config path such as ``model.backbone.depth``."""
    parts = name.split(".")
    return len(parts) > 1 and all(p.isidentifier() or p.lstrip("-").isdigit() for p in parts)
