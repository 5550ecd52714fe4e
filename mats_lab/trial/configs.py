"""Loading mats-lab configs with overrides that cannot silently miss.

``Config.merge_from_dict`` happily adds a misspelt key as a new one. Here every dotted override
must land on an existing path: its parent must exist, and its last part must either exist or
be an argument of a registered constructor (a dict with ``type``), where building the object
then rejects unknown names (no mats-lab constructor takes ``**kwargs``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from mmengine.config import Config, ConfigDict

#: Pipeline transforms that pick a clip's frames and take a ``clip_len`` (the ``frame_budget``
#: knob sets it; the token view finds the sampler by it).
FRAME_SAMPLERS = frozenset(
    {
        "SampleFrames",
        "CandidateSampleFrames",
        "DenseSampleFrames",
        "UniformSample",
        "UniformSampleFrames",
    }
)


LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader")


def loader_datasets(cfg: Mapping) -> Iterator[tuple[str, Mapping]]:
    """``(dataloader key, dataset dict)`` of each dataloader, dataset wrappers (``RepeatDataset``
    and the like, which hold the real one under ``dataset``) looked through."""
    for loader in LOADERS:
        node = cfg.get(loader)
        dataset = node.get("dataset") if isinstance(node, Mapping) else None
        while isinstance(dataset, Mapping) and "dataset" in dataset and "pipeline" not in dataset:
            dataset = dataset["dataset"]
        if isinstance(dataset, Mapping):
            yield loader, dataset


class UnknownConfigKey(KeyError):
    """An override names a config path that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])


def _child(node: object, part: str, dotted: str) -> object:
    if isinstance(node, Mapping):
        if part not in node:
            raise UnknownConfigKey(f"unknown config key {dotted!r}: no {part!r} there")
        return node[part]
    if isinstance(node, (list, tuple)) and part.lstrip("-").isdigit():
        index = int(part)
        if not -len(node) <= index < len(node):
            raise UnknownConfigKey(f"unknown config key {dotted!r}: index {index} out of range")
        return node[index]
    raise UnknownConfigKey(f"unknown config key {dotted!r}: {part!r} is not inside a dict/list")


def check_override_key(cfg: Config | ConfigDict, dotted: str) -> None:
    """Raise :class:`UnknownConfigKey` unless ``dotted`` names an existing or constructor key."""
    parts = dotted.split(".")
    node: object = cfg.to_dict() if isinstance(cfg, Config) else cfg
    for part in parts[:-1]:
        node = _child(node, part, dotted)
    leaf = parts[-1]
    if isinstance(node, Mapping) and leaf not in node and "type" not in node:
        raise UnknownConfigKey(
            f"unknown config key {dotted!r}: {leaf!r} is not in the config and its parent "
            "is not a registered component"
        )
    if not isinstance(node, Mapping):
        _child(node, leaf, dotted)


def load_config(path: str | Path, options: Mapping[str, object] | None = None) -> Config:
    """``Config.fromfile`` plus checked dotted overrides (list indices allowed)."""
    cfg = Config.fromfile(str(path))
    if options:
        for key in options:
            check_override_key(cfg, key)
        cfg.merge_from_dict(dict(options), allow_list_keys=True)
    return cfg
