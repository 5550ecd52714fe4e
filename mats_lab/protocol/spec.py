"""Study files: the YAML schema, validated with pydantic (unknown keys are errors).

A study names the stages of one trial, the search space, the objectives, the sampler, the
pruner, the seeds, the budget, the resources and where results are stored. Errors name the
file, the dotted key and what was expected::

    studies/keep_ratio.yaml: space.keep_ratio.grid.1: Input should be a valid number

One file although it passes 400 lines: the study validator reads every other model of the
schema (stages, variables, objectives, constraints, knob values) to check them against each
other, and the error formatting belongs to the reader that uses it.

Only pydantic, PyYAML and the standard library are imported here.
"""

from __future__ import annotations

import math
import os
import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mats_lab.protocol.knobs import KNOBS, RESERVED, KnobValueError, is_config_key
from mats_lab.protocol.layout import find_root, study_folder
from mats_lab.protocol.names import COST_METRICS

__all__ = [
    "Budget",
    "Constraint",
    "Objective",
    "PrunerSpec",
    "Resources",
    "SamplerSpec",
    "Stage",
    "StudyError",
    "StudySpec",
    "Variable",
    "load_study",
    "parse_duration",
    "placeholders",
    "study_paths",
]

Scalar = bool | int | float | str | None
#: A grid value: a scalar, or a bundle of several variables set together (``{label: ..., ...}``).
GridValue = Scalar | dict[str, Scalar]


class StudyError(ValueError):
    """A study file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(_Strict):
    """One step of a trial: an ``mm_configs/`` file run as one MMEngine training run."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
    #: Path relative to the study file's repository (or absolute). May contain ``{variable}``
    #: placeholders filled from the trial's variables, e.g. ``...-{frame_select}_finetune...``.
    config: str
    #: Fixed dotted-key overrides for this stage, applied before the trial's variables.
    overrides: dict[str, Any] = {}
    #: Fixed MATS knobs (aliases such as ``epochs``) for this stage, before the variables.
    knobs: dict[str, Any] = {}
    #: Name of an earlier stage whose last checkpoint this stage loads (``load_from``).
    load_from: str | None = None
    #: Run MMAction2's test loop after training and record ``test/*`` metrics.
    test: bool = False
    #: Run the stage only for trials whose variables take one of the listed values
    #: (``{pretrain: [mats, tube]}``); otherwise it is skipped, and a later stage that loads
    #: from it starts from scratch (a "no pre-training" arm of a factorial study).
    when: dict[str, list[Scalar]] = {}
    #: Devices (GPUs, or CPU slots) the stage runs on at once: one process (rank) per device,
    #: launched with torch's distributed launcher when more than one.
    devices: Annotated[int, Field(ge=1)] = 1


_KINDS = {"grid": "grid", "choices": "choices", "int": "int_range", "float": "float_range"}


class Variable(_Strict):
    """One dimension of the search space: exactly one of ``grid``, ``choices``, ``int``,
    ``float``."""

    grid: list[GridValue] | None = None
    choices: list[GridValue] | None = None
    int_range: tuple[int, int] | None = Field(default=None, alias="int")
    float_range: tuple[float, float] | None = Field(default=None, alias="float")
    log: bool = False
    step: float | None = None
    #: Stages the variable applies to (default: every stage whose config has the key).
    stages: list[str] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Variable:
        kinds = [k for k, a in _KINDS.items() if getattr(self, a) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"give exactly one of grid, choices, int, float (got {', '.join(kinds) or 'none'})"
            )
        values = self.grid if self.grid is not None else self.choices
        if values is not None and not values:
            raise ValueError(f"{kinds[0]} must list at least one value")
        bounds = self.int_range if self.int_range is not None else self.float_range
        if bounds is not None:
            low, high = bounds
            if not low <= high:
                raise ValueError(f"low {low} must not exceed high {high}")
            if self.log and low <= 0:
                raise ValueError("a log-scaled range needs low > 0")
        elif self.log or self.step is not None:
            raise ValueError("log and step only apply to int and float ranges")
        return self

    @property
    def kind(self) -> str:
        return next(k for k, a in _KINDS.items() if getattr(self, a) is not None)

    @property
    def values(self) -> list[GridValue]:
        """The listed values of a grid or choices variable."""
        return list(self.grid if self.grid is not None else self.choices or [])


class Objective(_Strict):
    """A metric to optimise: ``val/acc/top1``, ``test/acc/top5``, or a cost such as
    ``train_gmacs``, ``peak_memory_mb``, ``wall_time_s`` (optionally ``<stage>/<cost>``)."""

    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"


class Constraint(_Strict):
    """A budget a trial must meet to count as feasible (multi-objective studies)."""

    metric: str
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> Constraint:
        if self.max is None and self.min is None:
            raise ValueError("give max, min or both")
        return self


class SamplerSpec(_Strict):
    type: Literal["grid", "tpe", "gp", "nsga2", "random"] = "grid"
    seed: int = 0
    #: Extra keyword arguments of the Optuna sampler (recorded with the study).
    args: dict[str, Any] = {}


class PrunerSpec(_Strict):
    type: Literal["none", "median", "percentile", "hyperband", "successive_halving"] = "none"
    args: dict[str, Any] = {}


class Budget(_Strict):
    #: Number of trials (default: the grid's size for grid studies; required otherwise).
    trials: Annotated[int, Field(ge=1)] | None = None
    #: Wall-clock limit: seconds, or ``"90s"``, ``"15m"``, ``"2h"``. No new trial starts after it.
    time: str | float | None = None

    @field_validator("time")
    @classmethod
    def _duration(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            parse_duration(value)
        return value


class Resources(_Strict):
    #: GPU ids (``[0, 1, 2]``), a number of CPU slots, or ``auto`` (every GPU, else CPU slots).
    devices: Any = "auto"
    trials_per_device: Annotated[int, Field(ge=1)] = 1
    #: CPU threads per trial when running on CPU slots (default: cores / slots).
    cpu_threads: Annotated[int, Field(ge=1)] | None = None

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: Any) -> Any:
        return check_devices(value)


def check_devices(value: Any) -> list[int] | int | str:
    """``auto``, a slot count >= 1, or a list of distinct GPU ids >= 0 (also ``"0,1,2"``)."""
    if value == "auto":
        return "auto"
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return check_devices(int(text))
        try:
            value = [int(v) for v in text.split(",")]
        except ValueError:
            raise ValueError(
                f"expected 'auto', a number of slots or GPU ids like 0,1,2; got {text!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise ValueError(f"expected 'auto', a number of slots or a list of GPU ids, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"a number of slots must be >= 1, got {value}")
        return value
    if not value or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in value):
        raise ValueError(f"GPU ids must be a non-empty list of integers >= 0, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"GPU ids must be distinct, got {value!r}")
    return list(value)


def listed_values(space: dict[str, Variable]) -> dict[str, set[str]]:
    """Every variable of ``space`` and every key of its bundles (``label`` aside), with the
    values listed for it as strings; an empty set for a sampled range (any value)."""
    listed: dict[str, set[str]] = {}
    for key, var in space.items():
        if not (var.values and all(isinstance(v, dict) for v in var.values)):
            listed.setdefault(key, set())  # a bundle's own name is a free label
        for value in var.values or []:
            if isinstance(value, dict):
                for sub, item in value.items():
                    if sub != "label":
                        listed.setdefault(sub, set()).add(str(item))
            else:
                listed[key].add(str(value))
    return listed


def _check_baseline(baseline: str, space: dict[str, Variable]) -> None:
    """``baseline``: a bundle label of ``space`` or ``variable=value`` pairs naming values
    ``space`` lists (a bundle's keys count as variables; a range takes any value);
    ValueError naming what does not match."""
    text = baseline.replace(" ", "")
    if "=" not in text:
        labels = {
            str(v.get("label"))
            for var in space.values()
            for v in var.values
            if isinstance(v, dict) and "label" in v
        }
        if baseline.strip() not in labels:
            raise ValueError(
                f"baseline: {baseline!r} is no bundle label of space "
                f"({', '.join(sorted(labels)) or 'none'}); or give variable=value pairs"
            )
        return
    known = listed_values(space)
    for pair in text.split(","):
        name, _, value = pair.partition("=")
        if name not in known:
            raise ValueError(
                f"baseline: {name!r} is not a variable of space "
                f"(variables: {', '.join(sorted(known)) or 'none'})"
            )
        if known[name] and value not in known[name]:
            raise ValueError(
                f"baseline: {name}={value} is not among the values of {name} "
                f"({', '.join(sorted(known[name]))})"
            )


class StudySpec(_Strict):
    """A whole study file."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    description: str = ""
    stages: Annotated[list[Stage], Field(min_length=1)]
    space: dict[str, Variable] = {}
    seeds: Annotated[list[int], Field(min_length=1)] = [0]
    objectives: Annotated[list[Objective], Field(min_length=1)] = [Objective(metric="val/acc/top1")]
    constraints: list[Constraint] = []
    sampler: SamplerSpec = SamplerSpec()
    pruner: PrunerSpec = PrunerSpec()
    budget: Budget = Budget()
    resources: Resources = Resources()
    #: Times a crashed trial is run again before it is recorded as failed.
    retries: Annotated[int, Field(ge=0)] = 1
    #: The configuration ``mats-lab report`` compares every other with (paired by seed), as
    #: ``--baseline`` takes it: a bundle label or ``variable=value`` pairs joined by commas
    #: (``pretrain=none,keep_ratio=1.0``); ``--baseline`` overrides it. Unset: the report's
    #: convention (the first VideoMAE / keep 1.0 / tube / uniform configuration).
    baseline: str | None = None
    #: Study folder for trial work dirs and the default stores (relative to the study file;
    #: default ``runs/<file stem>`` next to it).
    output: str | None = None
    #: Optuna storage URL (default: a journal file in the study folder).
    storage: str | None = None
    #: MLflow tracking URI (default: ``sqlite:///<study folder>/mlflow.db``).
    tracking_uri: str | None = None
    #: Shared stage store: a folder on a filesystem every worker mounts at the same path, holding
    #: the stage work dirs (relative to the study file; default: the study folder's own). Any
    #: node reuses a finished stage there and resumes a killed one from its checkpoint.
    stage_store: str | None = None
    #: The trial command (default: the MMEngine stage runner). The launcher appends
    #: ``--spec STAGE.json``; a fake command makes scheduling testable without a model.
    command: list[str] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StudySpec:
        names = [s.name for s in self.stages]
        for i, stage in enumerate(self.stages):
            for knob in stage.knobs:
                if knob not in KNOBS:
                    raise ValueError(
                        f"stages.{i}.knobs.{knob}: unknown knob; expected one of "
                        f"{', '.join(sorted(KNOBS))} (dotted keys go in overrides)"
                    )
            for key in stage.overrides:
                if not (is_config_key(key) or key.isidentifier()) or key in KNOBS:
                    raise ValueError(
                        f"stages.{i}.overrides.{key}: expected a config key such as "
                        "train_cfg.max_epochs or load_from (knobs such as epochs go in knobs)"
                    )
            if stage.name in names[:i]:
                raise ValueError(f"stages.{i}.name: stage {stage.name!r} is listed twice")
            if stage.load_from is not None and stage.load_from not in names[:i]:
                raise ValueError(
                    f"stages.{i}.load_from: {stage.load_from!r} is not an earlier stage "
                    f"(earlier: {', '.join(names[:i]) or 'none'})"
                )
        fields = {f for s in self.stages for f in placeholders(s.config)}
        for key, var in self.space.items():
            if not all(isinstance(v, dict) for v in var.values) or not var.values:
                _check_variable_name(key, fields)  # a bundle's name is a free label
            for scoped in var.stages or []:
                if scoped not in names:
                    raise ValueError(f"space.{key}.stages: no stage named {scoped!r}")
            for j, value in enumerate(var.values):
                if isinstance(value, dict):
                    for sub in value:
                        if sub != "label":
                            _check_variable_name(sub, fields, f"space.{key}.grid.{j}.")
        defined = set(self.space) | set(listed_values(self.space))
        for i, stage in enumerate(self.stages):
            for name, allowed in stage.when.items():
                if name not in defined:
                    raise ValueError(
                        f"stages.{i}.when.{name}: not a variable of space "
                        f"(variables: {', '.join(sorted(defined)) or 'none'})"
                    )
                if not allowed:
                    raise ValueError(f"stages.{i}.when.{name}: list at least one value")
        for i, stage in enumerate(self.stages):
            for field in placeholders(stage.config):
                if field not in defined:
                    raise ValueError(
                        f"stages.{i}.config: placeholder {{{field}}} is not a variable of space"
                    )
        if self.sampler.type == "grid":
            for key, var in self.space.items():
                if var.kind not in ("grid", "choices"):
                    raise ValueError(
                        f"space.{key}: the grid sampler needs listed values (grid or choices), "
                        f"not a {var.kind} range"
                    )
        elif self.budget.trials is None and self.budget.time is None:
            raise ValueError(f"budget: a {self.sampler.type} study needs budget.trials or .time")
        if self.pruner.type != "none" and len(self.objectives) > 1:
            raise ValueError("pruner: Optuna prunes single-objective studies only; use constraints")
        if self.constraints and self.sampler.type not in ("tpe", "gp", "nsga2"):
            raise ValueError(f"constraints: the {self.sampler.type} sampler ignores constraints")
        if self.baseline is not None:
            _check_baseline(self.baseline, self.space)
        for i, obj in enumerate(self.objectives):
            _check_metric(obj.metric, names, f"objectives.{i}.metric")
        for i, con in enumerate(self.constraints):
            _check_metric(con.metric, names, f"constraints.{i}.metric")
        for where, knob, value in self.knob_values():
            try:
                KNOBS[knob].check(value)
            except KnobValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        return self

    def knob_values(self) -> list[tuple[str, str, Any]]:
        """Every knob value the study can give a trial: ``(dotted key in the file, knob,
        value)``; for a sampled range, its two ends."""
        found: list[tuple[str, str, Any]] = []
        for i, stage in enumerate(self.stages):
            found += [(f"stages.{i}.knobs.{k}", k, v) for k, v in stage.knobs.items()]
        for key, var in self.space.items():
            if key in KNOBS:
                bounds = var.int_range if var.int_range is not None else var.float_range
                if bounds is not None:
                    found += [(f"space.{key}.{var.kind}", key, end) for end in bounds]
            for j, value in enumerate(var.values):
                if isinstance(value, dict):
                    found += [
                        (f"space.{key}.{var.kind}.{j}.{sub}", sub, v)
                        for sub, v in value.items()
                        if sub in KNOBS
                    ]
                elif key in KNOBS:
                    found.append((f"space.{key}.{var.kind}.{j}", key, value))
        return found


def placeholders(template: str) -> list[str]:
    """The ``{variable}`` placeholders of a stage's config path."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def study_paths(spec: StudySpec, study_file: Path) -> tuple[Path, Path]:
    """``(study folder, repository root)`` of a study (see :mod:`mats_lab.protocol.layout`)."""
    return study_folder(study_file, spec.output), find_root(study_file)


def _check_variable_name(name: str, fields: set[str], where: str = "space.") -> None:
    if name in RESERVED:
        raise ValueError(f"{where}{name}: {name!r} is reserved (use the top-level seeds list)")
    if name in KNOBS or is_config_key(name) or name in fields:
        return
    raise ValueError(
        f"{where}{name}: unknown variable; expected a dotted config key (model.backbone.depth), "
        f"a {{placeholder}} of a stage config, or one of: {', '.join(sorted(KNOBS))}"
    )


def _check_metric(metric: str, stages: list[str], where: str) -> None:
    head, _, rest = metric.partition("/")
    if head in ("val", "test") and rest:
        return
    if metric in COST_METRICS or (head in stages and rest in COST_METRICS):
        return
    raise ValueError(
        f"{where}: unknown metric {metric!r}; expected val/<name>, test/<name>, "
        f"one of {', '.join(COST_METRICS)}, or <stage>/<cost>"
    )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"`` or ``"1d"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration like 90, '90s', '15m' or '2h', got {value!r}")
        seconds = float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


def _loc(loc: tuple[int | str, ...]) -> str:
    # pydantic puts union member names into locations (e.g. 'list[...]', 'int'): drop them.
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_NAMES))]
    return ".".join(parts)


_TYPE_NAMES = {"int", "float", "str", "bool", "none", "literal['auto']", "function-after"}


def _messages(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        where = _loc(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}: {message}" if where else message)
    return list(dict.fromkeys(lines))


def load_study(path: str | Path, fixed: dict[str, Any] | None = None) -> StudySpec:
    """Read and validate a study file, with what it ``extends`` merged under it.

    ``fixed`` (``--set name=value``) pins a variable to one value for every trial; a name not in
    the space (an alias or a dotted config key) is added to it. Raises :class:`StudyError`
    naming the file and the dotted key.
    """
    path = Path(path)
    data, chain = _with_bases(path)
    if fixed:
        space = data.get("space") or {}
        if not isinstance(space, dict):
            raise StudyError(f"{path}: space: expected a mapping")
        for name, value in fixed.items():
            old = space.get(name)
            scope = {"stages": old["stages"]} if isinstance(old, dict) and "stages" in old else {}
            space[name] = {"grid": [value], **scope}
        data["space"] = space
    where = str(path)
    if len(chain) > 1:
        where += " (extends " + " -> ".join(str(p) for p in chain[1:]) + ")"
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        lines = _messages(exc)
        raise StudyError("\n".join(f"{where}: {line}" for line in lines)) from None


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise StudyError(f"{path}: cannot read the study file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        raise StudyError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _with_bases(path: Path, below: tuple[Path, ...] = ()) -> tuple[dict[str, Any], list[Path]]:
    """``path``'s mapping over the study file it ``extends`` (relative to ``path``'s folder),
    recursively, and the chain of files read (``path`` first). Mappings merge key by key, a
    mapping holding ``_delete_: true`` replaces the base's instead; lists and scalars replace.
    ``below``: the files that extend ``path`` (a cycle is an error)."""
    data = _read_mapping(path)
    if "extends" not in data:
        return data, [path]
    base = data.pop("extends")
    if not isinstance(base, str) or not base.strip():
        raise StudyError(f"{path}: extends: expected the path of another study file, got {base!r}")
    base_path = Path(os.path.normpath(path.parent / base))  # an absolute base stays as it is
    seen = [p.resolve() for p in (*below, path)]
    if base_path.resolve() in seen:
        loop = " -> ".join(str(p) for p in (*below, path, base_path))
        raise StudyError(f"{path}: extends: {base} leads back to itself ({loop})")
    if not base_path.is_file():
        raise StudyError(f"{path}: extends: no study file {base_path}")
    if "name" not in data:
        raise StudyError(
            f"{path}: name: a study that extends {base} needs a name of its own "
            "(its trials and runs are stored under it)"
        )
    merged, chain = _with_bases(base_path, (*below, path))
    return _merged(merged, data, f"{path}: "), [path, *chain]


def _merged(base: dict[str, Any], over: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and "_delete_" in value:
            flag = value["_delete_"]
            if not isinstance(flag, bool):
                raise StudyError(f"{where}{key}._delete_: expected true or false, got {flag!r}")
            value = {k: v for k, v in value.items() if k != "_delete_"}
            if flag:
                out[key] = value
                continue
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = _merged(old, value, f"{where}{key}.")
        else:
            out[key] = value
    return out
