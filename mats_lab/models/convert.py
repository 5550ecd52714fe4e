"""Key conversion from the official VideoMAE / EVEREST checkpoints to mats-lab's names.

The official code (VideoMAE, and EVEREST which builds on it) names the ViT timm-style
(``patch_embed.proj``, ``mlp.fc1``); mats-lab uses MMAction2's names (``patch_embed.projection``,
``mlp.layers.0.0``), so MMAction2's own VideoMAE checkpoints need no conversion at all.

Two targets:

- ``recognizer``: an MMAction2 ``Recognizer3D`` with a ``MATSVisionTransformer`` backbone
  (``backbone.*``, ``cls_head.fc_cls.*``) — for fine-tuned checkpoints, or pre-trained ones
  whose encoder should start a fine-tuning;
- ``pretrainer``: a ``MATSPretrainer`` (``backbone.*``, ``decoder.*``) — to continue
  pre-training from an official pre-training checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

__all__ = ["TARGETS", "convert_official_state_dict", "is_mmaction_layout", "unwrap_state_dict"]

TARGETS = ("recognizer", "pretrainer")

# timm-style ViT names -> MMAction2's, applied to the part after the encoder prefix.
_VIT_RULES: list[tuple[str, str]] = [
    (r"^patch_embed\.proj\.", "patch_embed.projection."),
    (r"^(blocks\.\d+)\.mlp\.fc1\.", r"\1.mlp.layers.0.0."),
    (r"^(blocks\.\d+)\.mlp\.fc2\.", r"\1.mlp.layers.1."),
]
# Fixed sine-cosine tables are recomputed by mats-lab, never loaded.
_SKIPPED = {"pos_embed", "encoder.pos_embed", "decoder.pos_embed"}


def unwrap_state_dict(checkpoint: Mapping[str, object]) -> dict[str, Tensor]:
    """The tensor mapping inside a checkpoint (``model``, ``module`` or ``state_dict`` key, or
    the checkpoint itself)."""
    for key in ("state_dict", "model", "module"):
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping):
            return dict(inner)
    if all(isinstance(v, Tensor) for v in checkpoint.values()):
        return dict(checkpoint)  # type: ignore[arg-type]
    raise ValueError(
        "no state dict found: expected tensors under 'model', 'module' or 'state_dict', "
        f"got keys {sorted(checkpoint)[:8]}"
    )


def is_mmaction_layout(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether the keys already follow MMAction2 (``backbone.patch_embed.projection``)."""
    return any(k.startswith("backbone.patch_embed.projection.") for k in state_dict)


def _vit_key(key: str) -> str:
    for pattern, repl in _VIT_RULES:
        key = re.sub(pattern, repl, key)
    return key


def convert_official_state_dict(
    state_dict: Mapping[str, Tensor], target: str = "recognizer"
) -> dict[str, Tensor]:
    """Rename an official VideoMAE / EVEREST state dict for ``target``.

    Args:
        state_dict: fine-tuned (``blocks.*``, ``head.*``) or pre-training (``encoder.*``,
            ``decoder.*``, ``encoder_to_decoder``, ``mask_token``) keys; an MMAction2-layout
            dict is returned unchanged.
        target: ``recognizer`` or ``pretrainer``.

    Returns:
        The renamed mapping (same tensors). Keys with no counterpart raise ``ValueError``.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if is_mmaction_layout(state_dict):
        return dict(state_dict)
    out: dict[str, Tensor] = {}
    unknown: list[str] = []
    pretraining = any(k.startswith("encoder.") for k in state_dict)
    for key, value in state_dict.items():
        if key in _SKIPPED:
            continue
        if pretraining:
            if key.startswith("encoder."):
                out["backbone." + _vit_key(key[len("encoder.") :])] = value
            elif target == "recognizer":
                continue  # decoder weights have no place in a recogniser
            elif key == "encoder_to_decoder.weight" or key == "mask_token":
                out["decoder." + key] = value
            elif key.startswith("decoder."):
                out["decoder." + _vit_key(key[len("decoder.") :])] = value
            else:
                unknown.append(key)
        elif key.startswith("head."):
            if target == "recognizer":
                out["cls_head.fc_cls." + key[len("head.") :]] = value
        elif re.match(r"^(patch_embed|blocks|norm|fc_norm|cls_token)", key):
            out["backbone." + _vit_key(key)] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"keys with no mats-lab counterpart: {unknown[:10]}")
    return out
