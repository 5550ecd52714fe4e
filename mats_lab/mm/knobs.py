"""The MATS knob aliases of a study (``keep_ratio``, ``frame_budget``, ``epochs``, ...) applied to
a loaded config.

One alias may set several expanded keys: ``frame_budget`` changes the backbone's frame count
and the ``clip_len`` of every frame sampler of the train/val/test pipelines (MMEngine resolved
the pipeline variables at parse time, so the expanded paths are what must change). The names
are listed in :mod:`mats_lab.lab.knobs`; every one is implemented here.

An alias whose target is absent from a config (``masking`` in a fine-tuning config) is skipped
and reported, unless the study scoped it to this stage, which makes the absence an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mmengine.config import Config

from mats_lab.lab.knobs import ALIASES
from mats_lab.mm.configs import UnknownConfigKey

__all__ = ["KnobError", "apply_knobs"]

_SAMPLERS = ("SampleFrames", "CandidateSampleFrames", "UniformSample", "DenseSampleFrames")
_LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")


class KnobError(ValueError):
    """A knob value out of range, or a scoped knob that does not apply to the config."""


def _pipelines(cfg: Config) -> Iterator[tuple[str, list]]:
    for loader in _LOADERS:
        node = cfg.get(loader)
        dataset = node.get("dataset") if isinstance(node, Mapping) else None
        while isinstance(dataset, Mapping) and "dataset" in dataset and "pipeline" not in dataset:
            dataset = dataset["dataset"]  # wrappers such as RepeatDataset
        if isinstance(dataset, Mapping) and isinstance(dataset.get("pipeline"), list):
            yield loader, dataset["pipeline"]


def _backbone(cfg: Config) -> Mapping | None:
    model = cfg.get("model")
    backbone = model.get("backbone") if isinstance(model, Mapping) else None
    return backbone if isinstance(backbone, Mapping) else None


def _ratio(name: str, value: Any, low_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise KnobError(f"{name} must be a number in (0, 1], got {value!r}")
    if not 0 < value <= 1:
        raise KnobError(f"{name} must be in (0, 1], got {value}")
    return float(value)


def _keep_ratio(cfg: Config, value: Any) -> list[str]:
    backbone = _backbone(cfg)
    if backbone is None or "keep_ratio" not in backbone:
        return []
    backbone["keep_ratio"] = _ratio("keep_ratio", value)
    return ["model.backbone.keep_ratio"]


def _model_key(key: str, check: Callable[[Any], Any]) -> Callable[[Config, Any], list[str]]:
    def apply(cfg: Config, value: Any) -> list[str]:
        model = cfg.get("model")
        if not isinstance(model, Mapping) or key not in model:
            return []
        model[key] = check(value)
        return [f"model.{key}"]

    return apply


def _masking(value: Any) -> str:
    if value not in ("mats", "tube", "random"):
        raise KnobError(f"masking must be 'mats', 'tube' or 'random', got {value!r}")
    return str(value)


def _scorer(cfg: Config, value: Any) -> list[str]:
    if value not in ("embedding", "pixel", "motion_vectors"):
        raise KnobError(f"scorer must be 'embedding', 'pixel' or 'motion_vectors', got {value!r}")
    backbone = _backbone(cfg)
    if backbone is None or backbone.get("type") != "MATSVisionTransformer":
        return []
    backbone["scorer"] = value
    return ["model.backbone.scorer"]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KnobError(f"{name} must be a positive integer, got {value!r}")
    return value


def _frame_budget(cfg: Config, value: Any) -> list[str]:
    frames = _positive_int("frame_budget", value)
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
            if step.get("type") in _SAMPLERS and "clip_len" in step:
                step["clip_len"] = frames
                changed.append(f"{loader}.dataset.pipeline.{i}.clip_len")
            if step.get("type") == "PixelDiffFrameSelect":
                step["frame_budget"] = frames
                changed.append(f"{loader}.dataset.pipeline.{i}.frame_budget")
    return changed


def _candidate_ratio(cfg: Config, value: Any) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
        raise KnobError(f"candidate_ratio must be a number >= 1, got {value!r}")
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


def _epochs(cfg: Config, value: Any) -> list[str]:
    epochs = _positive_int("epochs", value)
    train_cfg = cfg.get("train_cfg")
    if not isinstance(train_cfg, Mapping) or "max_epochs" not in train_cfg:
        return []
    old = int(train_cfg["max_epochs"])
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
    if isinstance(schedulers, Mapping):
        schedulers = [schedulers]
    kept = []
    for i, sched in enumerate(schedulers):
        begin = int(sched.get("begin", 0))
        if begin >= epochs:  # starts after the new end (a cosine after a long warm-up)
            changed.append(f"param_scheduler.{i} (dropped)")
            continue
        end = sched.get("end")
        if end is not None and (end == old or end > epochs):
            span = end - begin
            sched["end"] = epochs
            changed.append(f"param_scheduler.{i}.end")
            if sched.get("T_max") == span:
                sched["T_max"] = epochs - begin
                changed.append(f"param_scheduler.{i}.T_max")
        kept.append(sched)
    if kept != list(schedulers):
        cfg.param_scheduler = kept
    return changed


def _lr(cfg: Config, value: Any) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise KnobError(f"lr must be a positive number, got {value!r}")
    optimizer = (cfg.get("optim_wrapper") or {}).get("optimizer")
    if not isinstance(optimizer, Mapping):
        return []
    optimizer["lr"] = float(value)
    return ["optim_wrapper.optimizer.lr"]


def _batch_size(cfg: Config, value: Any) -> list[str]:
    loader = cfg.get("train_dataloader")
    if not isinstance(loader, Mapping):
        return []
    loader["batch_size"] = _positive_int("batch_size", value)
    return ["train_dataloader.batch_size"]


_APPLY: dict[str, Callable[[Config, Any], list[str]]] = {
    "keep_ratio": _keep_ratio,
    "visible_ratio": _model_key("visible_ratio", lambda v: _ratio("visible_ratio", v)),
    "masking": _model_key("masking", _masking),
    "frame_budget": _frame_budget,
    "candidate_ratio": _candidate_ratio,
    "scorer": _scorer,
    "epochs": _epochs,
    "lr": _lr,
    "batch_size": _batch_size,
}
assert set(_APPLY) == set(ALIASES), "every alias of mats_lab.lab.knobs needs an implementation"


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
        applied[name] = _APPLY[name](cfg, value)
        if not applied[name] and name in strict:
            raise UnknownConfigKey(f"knob {name!r} has nothing to set in {cfg.filename}")
    return applied
