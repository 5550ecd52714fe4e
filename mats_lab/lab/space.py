"""From a study's search space to trials: grid points, sampled points, and each trial's stages.

A *point* is one assignment of the study's variables plus a seed. Its Optuna ``params`` hold
the variables (a bundle of several knobs appears under its label); the seed is a user
attribute, so repeats over seeds share their params. A point's ``key`` identifies it across
restarts and workers: a grid point is completed exactly once per key.

Each stage of a point becomes a :class:`StagePlan`: the config file, the dotted overrides and
MATS aliases to apply, the seed, the stage it loads from and the devices it runs on. Its
``key`` hashes all of that (the device count only when it is not 1) plus the config files'
text, so the same stage under several later settings is one run, and a restarted trial finds
its own work dir (and checkpoint) again.

Only the standard library is imported here (Optuna trials are duck-typed).
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mats_lab.protocol.spec import GridValue, Scalar, StudySpec, Variable, placeholders

__all__ = [
    "Point",
    "StagePlan",
    "config_digest",
    "grid_label",
    "grid_points",
    "plan_stages",
    "point_from_params",
    "suggest_point",
]


@dataclass(frozen=True)
class Point:
    """One trial's variables and seed."""

    params: dict[str, Scalar]  # Optuna params: variable -> value (a bundle's label)
    seed: int
    values: dict[str, Scalar]  # every knob the trial sets (bundles expanded), labels dropped

    @property
    def key(self) -> str:
        text = json.dumps({"params": self.params, "seed": self.seed}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.params.items()]
        return ", ".join([*parts, f"seed={self.seed}"])


@dataclass(frozen=True)
class StagePlan:
    """One stage of one trial, ready to hand to the trial command."""

    name: str
    config: str  # absolute path of the config file
    overrides: dict[str, Any]  # dotted config keys (stage overrides, then variables)
    knobs: dict[str, Scalar]  # MATS aliases (expanded by the trial process)
    strict: list[str]  # variables that must apply to this stage (explicitly scoped)
    seed: int
    load_from: str | None  # name of the stage whose checkpoint this one loads
    test: bool
    key: str = field(default="")  # filled by plan_stages
    #: the key before it was portable (the config's absolute path in it): a stage folder
    #: under that name is adopted (renamed) by the sweep; "" where the two are the same
    legacy_key: str = field(default="")
    devices: int = 1  # devices (ranks) the stage runs on at once


def grid_label(value: GridValue) -> Scalar:
    """The Optuna param value of a grid entry (a bundle is known by its label)."""
    if isinstance(value, dict):
        if "label" in value and value["label"] is not None:
            return str(value["label"])
        return json.dumps(value, sort_keys=True)
    return value


def _expand(spec: StudySpec, params: dict[str, Scalar]) -> dict[str, Scalar]:
    values: dict[str, Scalar] = {}
    for name, var in spec.space.items():
        chosen = params[name]
        bundle = next(
            (v for v in var.values if isinstance(v, dict) and grid_label(v) == chosen), None
        )
        if bundle is None:
            values[name] = chosen
        else:
            values.update({k: v for k, v in bundle.items() if k != "label"})
    return values


def point_from_params(spec: StudySpec, params: dict[str, Scalar], seed: int) -> Point:
    """The point for Optuna ``params`` (e.g. from a stored trial) and a seed."""
    missing = [n for n in spec.space if n not in params]
    if missing:
        raise KeyError(f"trial params lack the variables {', '.join(missing)}")
    params = {n: params[n] for n in spec.space}
    return Point(params=params, seed=int(seed), values=_expand(spec, params))


def grid_points(spec: StudySpec) -> list[Point]:
    """Every grid point times every seed, in a stable order (variables as written)."""
    names = list(spec.space)
    axes = [[grid_label(v) for v in spec.space[n].values] for n in names]
    points = []
    for combo in itertools.product(*axes):
        params = dict(zip(names, combo, strict=True))
        for seed in spec.seeds:
            points.append(point_from_params(spec, params, seed))
    return points


class SuggestsParams(Protocol):
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...
    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...  # noqa: E501
    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...


def _suggest(trial: SuggestsParams, name: str, var: Variable) -> Scalar:
    if var.int_range is not None:
        step = int(var.step) if var.step is not None else 1
        return trial.suggest_int(name, var.int_range[0], var.int_range[1], step=step, log=var.log)
    if var.float_range is not None:
        low, high = var.float_range
        return trial.suggest_float(name, low, high, step=var.step, log=var.log)
    return trial.suggest_categorical(name, [grid_label(v) for v in var.values])


def suggest_point(spec: StudySpec, trial: SuggestsParams, seed: int) -> Point:
    """Ask the sampler (through an Optuna trial) for every variable."""
    params = {name: _suggest(trial, name, var) for name, var in spec.space.items()}
    return point_from_params(spec, params, seed)


def _bases(path: Path) -> list[Path]:
    """The ``_base_`` files a classic MMEngine config names (read with ``ast``, not executed)."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError):
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            names = [value] if isinstance(value, str) else list(value)
            return [path.parent / n for n in names if isinstance(n, str) and "::" not in n]
    return []


def config_digest(path: str | Path) -> str:
    """A hash of a config file and, recursively, the local ``_base_`` files it inherits."""
    digest = hashlib.sha256()
    seen: set[Path] = set()
    todo = [Path(path).resolve()]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            digest.update(current.read_bytes())
        except OSError:
            digest.update(f"missing:{current}".encode())
        todo.extend(b.resolve() for b in _bases(current))
    return digest.hexdigest()


def _stage_key(name: str, material: dict[str, Any]) -> str:
    text = json.dumps(material, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def plan_stages(
    spec: StudySpec, point: Point, root: Path, command: list[str] | None = None
) -> list[StagePlan]:
    """The stages of ``point``'s trial with their keys; ``root`` resolves relative configs."""
    plans: list[StagePlan] = []
    keys: dict[str, str] = {}
    legacy_keys: dict[str, str] = {}
    fields = {f for stage in spec.stages for f in placeholders(stage.config)}
    top = root.resolve()
    for stage in spec.stages:
        if not _runs(stage.when, point):
            continue  # not for this point; a stage that loads from it starts from scratch
        try:
            config_name = stage.config.format(**point.values)
        except (KeyError, IndexError) as exc:
            raise KeyError(f"stage {stage.name}: config placeholder {exc} has no value") from None
        config = Path(config_name)
        config = (config if config.is_absolute() else root / config).resolve()
        overrides: dict[str, Any] = dict(stage.overrides)
        knobs: dict[str, Scalar] = dict(stage.knobs)
        strict: list[str] = list(stage.knobs)
        for name, value in point.values.items():
            scope = _scope(spec, name)
            if name in fields or (scope is not None and stage.name not in scope):
                continue  # picks a config file, or belongs to other stages
            if scope is not None:
                strict.append(name)
            if "." in name:
                overrides[name] = value
            else:
                knobs[name] = value
        load_from = stage.load_from if stage.load_from in keys else None
        material = {
            "config": config_digest(config),
            # relative to the repository, so that checkouts at other paths (another machine,
            # another clone) share and pool stage folders
            "path": str(config.relative_to(top) if config.is_relative_to(top) else config),
            "overrides": overrides,
            "knobs": knobs,
            "seed": point.seed,
            "upstream": keys.get(load_from) if load_from else None,
            "test": stage.test,
            "command": command,
        }
        if stage.devices != 1:  # only then: the keys of one-device stages stay as they were
            material["devices"] = stage.devices
        legacy = dict(material, path=str(config))
        legacy["upstream"] = legacy_keys.get(load_from) if load_from else None
        key, legacy_key = _stage_key(stage.name, material), _stage_key(stage.name, legacy)
        keys[stage.name], legacy_keys[stage.name] = key, legacy_key
        plans.append(
            StagePlan(
                name=stage.name,
                config=str(config),
                overrides=overrides,
                knobs=knobs,
                strict=strict,
                seed=point.seed,
                load_from=load_from,
                test=stage.test,
                key=key,
                legacy_key=legacy_key if legacy_key != key else "",
                devices=stage.devices,
            )
        )
    return plans


def _runs(when: dict[str, list[Scalar]], point: Point) -> bool:
    """Whether a stage with ``when`` conditions runs for ``point`` (a bundle by its label)."""
    return all(point.values.get(n, point.params.get(n)) in allowed for n, allowed in when.items())


def _scope(spec: StudySpec, name: str) -> list[str] | None:
    """The stages a (possibly bundled) variable is limited to, or None for all."""
    if name in spec.space:
        return spec.space[name].stages
    for var in spec.space.values():
        if any(isinstance(v, dict) and name in v for v in var.values):
            return var.stages
    return None
