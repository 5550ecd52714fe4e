"""The knobs of a study (``keep_ratio``, ``frame_budget``, ``epochs``, ...) applied to a loaded
config.

One alias may set several expanded keys: ``frame_budget`` changes the backbone's frame count
and the ``clip_len`` of every frame sampler of the train/val/test pipelines (MMEngine resolved
the pipeline variables at parse time, so the expanded paths are what must change). The names
and their allowed values are the registry of :mod:`mats_lab.protocol.knobs`, whose check
every value passes here too; every knob is implemented here.

An alias whose target is absent from a config (``masking`` in a fine-tuning config) is skipped
and reported, unless the study scoped it to this stage, which makes the absence an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mmengine.config import Config

from mats_lab.protocol.knobs import KNOBS, KnobValueError
from mats_lab.trial.configs import FRAME_SAMPLERS, UnknownConfigKey, loader_datasets

__all__ = ["KnobError", "apply_knobs"]

#: A knob value the registry refuses (the same error ``--dry-run`` gives).
KnobError = KnobValueError


def _pipelines(cfg: Config) -> Iterator[tuple[str, list]]:
    for loader, dataset in loader_datasets(cfg):
        if isinstance(dataset.get("pipeline"), list):
            yield loader, dataset["pipeline"]


def _backbone(cfg: Config) -> Mapping | None:
    model = cfg.get("model")
    backbone = model.get("backbone") if isinstance(model, Mapping) else None
    return backbone if isinstance(backbone, Mapping) else None


def _keep_ratio(cfg: Config, value: Any) -> list[str]:
    backbone = _backbone(cfg)
    if backbone is None or "keep_ratio" not in backbone:
        return []
    backbone["keep_ratio"] = value
    return ["model.backbone.keep_ratio"]


def _model_key(key: str) -> Callable[[Config, Any], list[str]]:
    def apply(cfg: Config, value: Any) -> list[str]:
        model = cfg.get("model")
        if not isinstance(model, Mapping) or key not in model:
            return []
        model[key] = value
        return [f"model.{key}"]

    return apply


def _scorer(cfg: Config, value: Any) -> list[str]:
    backbone = _backbone(cfg)
    if backbone is None or backbone.get("type") != "MATSVisionTransformer":
        return []
    backbone["scorer"] = value
    return ["model.backbone.scorer"]


def _frame_budget(cfg: Config, frames: int) -> list[str]:
    changed = []
    backbone = _backbone(cfg)
    if backbone is not None and "num_frames" in backbone:
        tubelet = int(backbone.get("tubelet_size", 2))
        if frames % tubelet:
            raise KnobError(f"frame_budget {frames} is not a multiple of tubelet_size {tubelet}")
        backbone["num_frames"] = frames
        changed.append("model.backbone.num_frames")
    for loader, pipeline in _pipelines(cfg):
        for i, step in enumerate(pipeline):
            if step.get("type") in FRAME_SAMPLERS and "clip_len" in step:
                step["clip_len"] = frames
                changed.append(f"{loader}.dataset.pipeline.{i}.clip_len")
            if step.get("type") == "PixelDiffFrameSelect":
                step["frame_budget"] = frames
                changed.append(f"{loader}.dataset.pipeline.{i}.frame_budget")
    return changed


def _candidate_ratio(cfg: Config, value: float) -> list[str]:
    changed = []
    backbone = _backbone(cfg)
    in_model = backbone is not None and backbone.get("candidate_ratio") is not None
    if in_model:
        backbone["candidate_ratio"] = float(value)  # type: ignore[index]
        changed.append("model.backbone.candidate_ratio")
    for loader, pipeline in _pipelines(cfg):
        selects = any(s.get("type") == "PixelDiffFrameSelect" for s in pipeline)
        if not (selects or in_model):
            continue  # plain uniform sampling: more candidates would only change the clip
        for i, step in enumerate(pipeline):
            if step.get("type") == "CandidateSampleFrames":
                step["candidate_ratio"] = float(value)
                changed.append(f"{loader}.dataset.pipeline.{i}.candidate_ratio")
    return changed


def _scaled_epoch(value: float, factor: float) -> int:
    """``value * factor`` in whole epochs, at least 1 for a non-zero ``value``.

    Whole epochs because the knob cannot know an epoch's length: MMEngine turns a fractional
    boundary into ``int(epoch * iterations_per_epoch)`` iterations, which is 0 (and an error)
    for a short epoch."""
    return max(int(round(value * factor)), 1 if value > 0 else 0)


def _epochs(cfg: Config, epochs: int) -> list[str]:
    """``train_cfg.max_epochs``, with every epoch-based scheduler's ``begin``, ``end`` and
    ``T_max`` scaled by ``epochs / max_epochs`` (whole epochs): a 100-epoch recipe with 5
    warm-up epochs cut to 20 warms up for 1 epoch, an 800-epoch one with 40 cut to 100 for 5.
    A scheduler left with nothing to do (it would start at the new end) is dropped."""
    train_cfg = cfg.get("train_cfg")
    if not isinstance(train_cfg, dict) or "max_epochs" not in train_cfg:
        return []
    old = int(train_cfg["max_epochs"])
    factor = epochs / old
    train_cfg["max_epochs"] = epochs
    changed = ["train_cfg.max_epochs"]
    interval = int(train_cfg.get("val_interval", 1))
    if interval > old:  # validation switched off: keep it off
        train_cfg["val_interval"] = epochs + 1
        changed.append("train_cfg.val_interval")
    elif interval > epochs:  # keep at least the last epoch's validation
        train_cfg["val_interval"] = epochs
        changed.append("train_cfg.val_interval")
    schedulers = cfg.get("param_scheduler") or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    kept = []
    for i, sched in enumerate(schedulers):
        if not sched.get("by_epoch", True):
            kept.append(sched)  # counted in iterations: independent of the epochs
            continue
        begin = int(sched.get("begin", 0))
        end = sched.get("end")
        new_begin = _scaled_epoch(begin, factor)
        new_end = None if end is None else min(_scaled_epoch(end, factor), epochs)
        if new_begin >= epochs or (new_end is not None and new_end <= new_begin):
            changed.append(f"param_scheduler.{i} (dropped)")
            continue
        if new_begin != begin:
            sched["begin"] = new_begin
            changed.append(f"param_scheduler.{i}.begin")
        if new_end is not None:
            if sched.get("T_max") == end - begin:
                sched["T_max"] = new_end - new_begin
                changed.append(f"param_scheduler.{i}.T_max")
            sched["end"] = new_end
            changed.append(f"param_scheduler.{i}.end")
        elif "T_max" in sched:
            sched["T_max"] = _scaled_epoch(sched["T_max"], factor)
            changed.append(f"param_scheduler.{i}.T_max")
        kept.append(sched)
    if kept != list(schedulers) or isinstance(cfg.get("param_scheduler"), dict):
        cfg.param_scheduler = kept
    return changed


def _lr(cfg: Config, value: float) -> list[str]:
    optimizer = (cfg.get("optim_wrapper") or {}).get("optimizer")
    if not isinstance(optimizer, Mapping):
        return []
    optimizer["lr"] = float(value)
    return ["optim_wrapper.optimizer.lr"]


def _batch_size(cfg: Config, value: Any) -> list[str]:
    loader = cfg.get("train_dataloader")
    if not isinstance(loader, Mapping):
        return []
    loader["batch_size"] = value
    return ["train_dataloader.batch_size"]


_AMP_WRAPPERS = ("AmpOptimWrapper", "AutocastOptimWrapper")


def _precision(cfg: Config, value: str) -> list[str]:
    """fp32: the plain ``OptimWrapper``; bf16/fp16: mats-lab's ``AutocastOptimWrapper``
    (:mod:`mats_lab.mm.amp`: autocast with that dtype on the model's device, a loss scaler for
    fp16 on CUDA). MMEngine's ``AmpOptimWrapper`` does the same on CUDA but cannot be built
    without a GPU, so a bf16 trial could not run on a CPU slot."""
    wrapper = cfg.get("optim_wrapper")
    if not isinstance(wrapper, dict):
        return []
    for key in ("dtype", "loss_scale", "use_fsdp"):
        wrapper.pop(key, None)
    if value == "fp32":
        if wrapper.get("type") in _AMP_WRAPPERS:
            wrapper["type"] = "OptimWrapper"
        return ["optim_wrapper.type"]
    wrapper["type"] = "AutocastOptimWrapper"
    wrapper["dtype"] = {"bf16": "bfloat16", "fp16": "float16"}[value]
    return ["optim_wrapper.type", "optim_wrapper.dtype"]


_APPLY: dict[str, Callable[[Config, Any], list[str]]] = {
    "keep_ratio": _keep_ratio,
    "visible_ratio": _model_key("visible_ratio"),
    "masking": _model_key("masking"),
    "frame_budget": _frame_budget,
    "candidate_ratio": _candidate_ratio,
    "scorer": _scorer,
    "epochs": _epochs,
    "lr": _lr,
    "batch_size": _batch_size,
    "precision": _precision,
}
assert set(_APPLY) == set(KNOBS), "every knob of mats_lab.protocol.knobs needs an implementation"


def apply_knobs(
    cfg: Config, knobs: Mapping[str, Any], strict: tuple[str, ...] | list[str] = ()
) -> dict[str, list[str]]:
    """Set every alias in ``knobs`` on ``cfg`` (in place).

    Returns ``{alias: [expanded keys changed]}``; an alias that applies nowhere maps to ``[]``
    unless it is in ``strict``, which raises :class:`UnknownConfigKey`.
    """
    applied: dict[str, list[str]] = {}
    for name, value in knobs.items():
        if name not in _APPLY:
            raise UnknownConfigKey(
                f"unknown knob {name!r}: expected one of {', '.join(sorted(_APPLY))} "
                "or a dotted config key"
            )
        applied[name] = _APPLY[name](cfg, KNOBS[name].check(value))
        if not applied[name] and name in strict:
            raise UnknownConfigKey(f"knob {name!r} has nothing to set in {cfg.filename}")
    return applied
