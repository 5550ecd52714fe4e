"""The knob registry: every short name a study may use for a MATS setting, its type, its allowed
values and what it sets.

A study variable is either one of these knobs or a dotted config key (``model.backbone.depth``).
The study schema (:mod:`mats_lab.protocol.spec`) checks every knob value a study can produce
against this registry before anything trains; the trial side (``mats_lab.trial.knobs``) checks
again with the same :meth:`Knob.check` and applies the value to the loaded config, where it
knows, for example, every pipeline that samples frames. So ``--dry-run`` and the trial refuse
the same values with the same message.

Only the standard library is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALIASES",
    "KNOBS",
    "Knob",
    "KnobValueError",
    "PRECISIONS",
    "RESERVED",
    "check_knob",
    "is_config_key",
]

#: Numeric precisions of the ``precision`` knob (bf16/fp16: autocast; fp32: none).
PRECISIONS = ("fp32", "bf16", "fp16")


class KnobValueError(ValueError):
    """A knob value of the wrong type or out of range; the message names the knob and what it
    allows."""


@dataclass(frozen=True)
class Knob:
    """One knob: its name, what it sets, and the values it allows."""

    name: str
    sets: str  # what the knob sets in a config, in words
    allowed: str  # the allowed values, in words (shown in errors and ``--help``)
    check_value: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda v: v

    def check(self, value: Any) -> Any:
        """``value`` converted to the knob's type; :class:`KnobValueError` when not allowed."""
        if not self.check_value(value):
            raise KnobValueError(f"{self.name} must be {self.allowed}, got {value!r}")
        return self.convert(value)

    @property
    def numeric(self) -> bool:
        """Whether the knob takes numbers (so a sampled range can be checked at its ends)."""
        return self.name not in ("masking", "scorer", "precision")


def _number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _ratio(value: Any) -> bool:
    return _number(value) and 0 < value <= 1


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _one_of(*names: str) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and value in names


def _quoted(names: tuple[str, ...]) -> str:
    return "one of " + ", ".join(repr(n) for n in names)


MASKINGS = ("mats", "tube", "random")
SCORERS = ("embedding", "pixel", "motion_vectors")

KNOBS: dict[str, Knob] = {
    k.name: k
    for k in (
        Knob(
            "keep_ratio",
            "model.backbone.keep_ratio: fraction of all N tokens kept by motion (fine-tuning: "
            "tokens the encoder sees; pre-training: the candidate pool)",
            "a number in (0, 1]",
            _ratio,
            float,
        ),
        Knob(
            "visible_ratio",
            "model.visible_ratio: fraction of all N tokens the pre-training encoder sees",
            "a number in (0, 1]",
            _ratio,
            float,
        ),
        Knob(
            "masking",
            "model.masking: pre-training masking",
            _quoted(MASKINGS),
            _one_of(*MASKINGS),
            str,
        ),
        Knob(
            "frame_budget",
            "frames the model sees: model.backbone.num_frames and clip_len of every frame "
            "sampler in the train/val/test pipelines",
            "a positive integer (a multiple of the model's tubelet size)",
            _positive_int,
            int,
        ),
        Knob(
            "candidate_ratio",
            "model.backbone.candidate_ratio and the samplers' candidate_ratio (adaptive frame "
            "selection, METHOD §4)",
            "a number >= 1",
            lambda v: _number(v) and v >= 1,
            float,
        ),
        Knob(
            "scorer",
            "model.backbone.scorer: how token motion is scored",
            _quoted(SCORERS),
            _one_of(*SCORERS),
            str,
        ),
        Knob(
            "epochs",
            "train_cfg.max_epochs, with the LR schedule (warm-up included) scaled to match",
            "a positive integer",
            _positive_int,
            int,
        ),
        Knob(
            "lr",
            "the base learning rate (at the recipe's reference total batch; scaled with the "
            "total batch when the recipe scales it)",
            "a positive number",
            lambda v: _number(v) and v > 0,
            float,
        ),
        Knob(
            "batch_size",
            "train_dataloader.batch_size: clips per device (the learning rate follows the "
            "total batch where the recipe scales it)",
            "a positive integer",
            _positive_int,
            int,
        ),
        Knob(
            "precision",
            "the optimizer wrapper's autocast: fp32 (none), bf16 or fp16 (CUDA only; on CPU "
            "bf16 autocast runs, fp16 falls back to fp32)",
            _quoted(PRECISIONS),
            _one_of(*PRECISIONS),
            str,
        ),
    )
}

#: knob -> what it sets (shown by ``mats-lab sweep --help`` and in schema errors).
ALIASES: dict[str, str] = {name: knob.sets for name, knob in KNOBS.items()}

#: Names a study cannot use for its own variables: the trial's seed is a parameter of its own.
RESERVED = frozenset({"seed"})


def check_knob(name: str, value: Any) -> Any:
    """``value`` checked against knob ``name``; :class:`KnobValueError` for an unknown knob or
    a value it does not allow."""
    knob = KNOBS.get(name)
    if knob is None:
        raise KnobValueError(
            f"unknown knob {name!r}: expected one of {', '.join(sorted(KNOBS))} "
            "or a dotted config key"
        )
    return knob.check(value)


def is_config_key(name: str) -> bool:
    """True for a dotted config path such as ``model.backbone.depth``."""
    parts = name.split(".")
    return len(parts) > 1 and all(p.isidentifier() or p.lstrip("-").isdigit() for p in parts)
