"""Resolve stages without training: ``python -m mats_lab.trial.preflight STAGES.json``.

The sweep's preflight (:mod:`mats_lab.lab.preflight`) writes a JSON list of stage specs
(:class:`~mats_lab.protocol.records.StageSpec`); each is loaded exactly as the stage runner
would load it (the config file, its dotted overrides, its knobs) and nothing is trained or
written. The last line of stdout is a JSON object ``{index: error}`` for the stages that
cannot be built (empty when all can). Exit status 0 whenever the check itself ran.

Then, when every stage builds, the embedded datasets the stages read
(``MotionSynthDataset``) are generated if missing, with a progress bar on stderr, so a first
sweep shows what it is doing instead of sitting silent in its first stage.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mats_lab.mm import compat

compat.apply()

from mats_lab.protocol.records import StageSpec  # noqa: E402
from mats_lab.trial.configs import UnknownConfigKey, load_config, loader_datasets  # noqa: E402
from mats_lab.trial.knobs import apply_knobs  # noqa: E402

__all__ = ["check_constructor_args", "check_stage", "main"]


def _registries() -> list[Any]:
    import mmaction.registry as mmaction_registry
    from mmengine.registry import Registry

    found = [getattr(mmaction_registry, n) for n in dir(mmaction_registry)]
    return [r for r in found if isinstance(r, Registry)]


def _lookup(registry: Any, name: str) -> Any:
    try:
        return registry.get(name)
    except Exception:  # noqa: BLE001 - a registry whose import locations are missing
        return None


def _accepts(cls: Any, name: str) -> bool:
    """Whether ``cls(...)`` (or a function) takes an argument ``name`` (any, with **kwargs)."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return True  # cannot tell: let the build decide
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def check_constructor_args(cfg: Any, overrides: Mapping[str, Any]) -> None:
    """Raise :class:`UnknownConfigKey` for an override that adds a key to ``cfg`` (the config
    before its overrides) inside a registered
    component (a dict with ``type``) whose constructor takes no such argument.

    :func:`~mats_lab.trial.configs.load_config` lets such a key through (it may be a
    constructor argument the config leaves at its default); the build would fail only when
    the runner constructs the component, possibly hours into a trial.
    """
    plain = cfg.to_dict()
    registries = _registries()
    for dotted in overrides:
        *parents, leaf = dotted.split(".")
        node: Any = plain
        for part in parents:
            try:
                node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                node = None  # a missing parent: load_config names it
                break
        if not isinstance(node, Mapping) or leaf in node or "type" not in node:
            continue
        kind = node["type"]
        if not isinstance(kind, str):
            classes = [kind]
        else:
            classes = [c for c in (_lookup(r, kind) for r in registries) if c is not None]
        if classes and not any(_accepts(c, leaf) for c in classes):
            names = sorted(
                {
                    p.name
                    for c in classes
                    for p in inspect.signature(c).parameters.values()
                    if p.name not in ("self", "args")
                }
            )
            raise UnknownConfigKey(
                f"unknown config key {dotted!r}: {kind} takes no argument {leaf!r} "
                f"(it takes {', '.join(names)})"
            )


def check_stage(spec: StageSpec) -> str | None:
    """Why the stage's config cannot be built, or None when it can."""
    try:
        check_constructor_args(load_config(spec.config), spec.overrides)
        cfg = load_config(spec.config, spec.overrides)
        apply_knobs(cfg, spec.knobs, spec.strict)
    except Exception as exc:  # noqa: BLE001 - any failure to build is reported, not raised
        text = str(exc) or type(exc).__name__
        return text if isinstance(exc, (KeyError, ValueError)) else f"{type(exc).__name__}: {text}"
    return None


def _synth_datasets(cfg: Any) -> list[dict]:
    """The ``MotionSynthDataset`` entries of a config's dataloaders (wrappers looked through)."""
    return [
        dict(dataset)
        for _, dataset in loader_datasets(cfg)
        if dataset.get("type") == "MotionSynthDataset"
    ]


def ensure_embedded_data(specs: list[StageSpec]) -> None:
    """Generate every embedded dataset the stages read, with a progress bar on stderr."""
    from mats_lab.data.progress_bar import BuildBar
    from mats_lab.data.synth import DEFAULT_ROOT, ensure_dataset

    wanted = {}
    for spec in specs:
        for entry in _synth_datasets(load_config(spec.config, spec.overrides)):
            args = (
                str(entry.get("synth_root", DEFAULT_ROOT)),
                int(entry.get("synth_seed", 0)),
                str(entry.get("synth_size", "default")),
                bool(entry.get("static", False)),
            )
            wanted[args] = None
    for root, seed, size, static in wanted:
        with BuildBar(f"generating {os.path.relpath(Path(root).resolve())}") as bar:
            ensure_dataset(root, seed=seed, size=size, static=static, progress=bar.update)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", type=Path, help="a JSON list of stage specs")
    args = parser.parse_args(argv)
    specs = [StageSpec.model_validate(s) for s in json.loads(args.stages.read_text())]
    errors = {}
    for i, spec in enumerate(specs):
        error = check_stage(spec)
        if error is not None:
            errors[str(i)] = error
    if not errors:
        ensure_embedded_data(specs)
    print(json.dumps(errors), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
