"""Fixes for the pinned stack (``../shared/docs/STACK.md``), applied in every process.

They run when :mod:`mats_lab.mm` is imported, which every mats-lab config does through
``custom_imports`` — so MMAction2's unchanged ``tools/train.py`` gets them too, because
custom imports run inside ``Config.fromfile`` before the Runner imports mmaction's models.

1. mmaction2 1.2.0's wheel lacks ``mmaction/models/localizers/drn/`` (upstream #2714), so
   ``import mmaction.models`` fails. A stand-in ``DRN`` that refuses to be built is installed,
   only when the real folder is missing.
2. torch >= 2.6 loads with ``weights_only=True``; mmengine 0.10.7 never says otherwise, so
   resuming a full MMEngine checkpoint fails on ``HistoryBuffer``. Rather than disabling the
   check, mmengine's local-file checkpoint loader is replaced by one that allows exactly the
   classes MMEngine itself pickles into checkpoints, and only during that load
   (``torch.serialization.safe_globals``); the global allow-list is left untouched.
3. setuptools >= 82 dropped ``pkg_resources`` (mmengine uses it for ``mmaction::`` base-config
   paths and ``mmengine.hub``): that one is a pin, ``setuptools<82`` in ``pyproject.toml``.
4. mmcv-lite has no compiled ops, so importing mmcv's transformer bricks warns "You should
   install mmcv rather than mmcv-lite" on every run. Nothing in MATS uses those ops (STACK.md:
   mmcv-lite is the chosen install), so exactly that warning is silenced.
5. mmengine's ``Runner.save_checkpoint`` stores ``cfg.pretty_text`` in every checkpoint's meta,
   and ``pretty_text`` formats the whole config with yapf each time: about 1 s for a study
   stage's config, against 0.02 s for ``torch.save`` of the tiny model's 14 MB checkpoint, so
   a 40-epoch fine-tuning that checkpoints every epoch spent about 40 s of its 2-3 minutes
   formatting the same text (benchmarks/README.md, "Checkpoints"). The property is memoised
   on the config's content (its plain-dict ``repr`` and the formatting switch): the same
   config gives the same text from the second call on, a changed one is formatted anew.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import sys
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

_APPLIED = False

DRN_MODULE = "mmaction.models.localizers.drn"


def drn_folder_missing() -> bool:
    """Whether the installed mmaction lacks the ``models/localizers/drn`` folder."""
    spec = importlib.util.find_spec("mmaction")
    if spec is None or not spec.submodule_search_locations:
        return False  # no mmaction at all: nothing to fix
    root = Path(next(iter(spec.submodule_search_locations)))
    return not (root / "models" / "localizers" / "drn" / "drn.py").is_file()


class _MissingDRN:
    """Stand-in for MMAction2's DRN localiser, whose source the 1.2.0 wheel does not ship."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError(
            "DRN is not available: mmaction2 1.2.0's wheel lacks mmaction/models/localizers/drn "
            "(upstream issue #2714). mats-lab installed a stand-in so that the rest of "
            "mmaction.models imports; install mmaction2 from source to use DRN."
        )


def install_drn_stand_in() -> bool:
    """Register stand-in modules for the missing DRN package; returns whether it did."""
    if DRN_MODULE in sys.modules or not drn_folder_missing():
        return False
    package = types.ModuleType(DRN_MODULE)
    package.__path__ = []  # a package, so ``.drn.drn`` resolves
    module = types.ModuleType(DRN_MODULE + ".drn")
    _MissingDRN.__name__ = "DRN"
    _MissingDRN.__qualname__ = "DRN"
    module.DRN = _MissingDRN  # type: ignore[attr-defined]
    package.drn = module  # type: ignore[attr-defined]
    sys.modules[DRN_MODULE] = package
    sys.modules[DRN_MODULE + ".drn"] = module
    from mmaction.registry import MODELS  # the registry module imports no models

    MODELS.register_module(name="DRN", module=_MissingDRN, force=True)
    return True


def checkpoint_safe_globals() -> list[Any]:
    """The classes a checkpoint written by MMEngine under numpy 2 needs to unpickle.

    ``builtins.getattr`` is among them (HistoryBuffer pickles its statistics through it),
    which is why this list is only ever allowed inside a scoped context.
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    dtype_classes = [
        getattr(np.dtypes, name)
        for name in dir(np.dtypes)
        if name.endswith("DType") and isinstance(getattr(np.dtypes, name), type)
    ]
    return [
        HistoryBuffer,
        np._core.multiarray._reconstruct,
        np._core.multiarray.scalar,
        np.ndarray,
        np.dtype,
        builtins.getattr,
        *dtype_classes,
    ]


def load_run_checkpoint(filename: str, map_location: str | Callable[..., Any] | None = None) -> Any:
    """``torch.load`` a local checkpoint for MMEngine with ``weights_only=True``.

    Every local load MMEngine makes (``--resume``, ``load_from``, ``Pretrained`` init) comes
    here. The classes MMEngine itself pickles into training checkpoints
    (:func:`checkpoint_safe_globals`) are allowed for the duration of this call only; anything
    else is still refused. Third-party weights converted by ``mats-lab convert-ckpt`` are plain
    tensor dicts and are read there with no extra globals at all.
    """
    import torch

    if not os.path.isfile(filename):
        raise FileNotFoundError(f"checkpoint {filename} does not exist")
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        return torch.load(filename, map_location=map_location, weights_only=True)


def _register_checkpoint_loader() -> None:
    """Route mmengine's local-path checkpoint loading through :func:`load_run_checkpoint`."""
    from mmengine.runner.checkpoint import CheckpointLoader

    def load_from_local(filename: str, map_location: Any = None) -> Any:
        filename = os.path.expanduser(filename)
        return load_run_checkpoint(filename, map_location=map_location)

    # '' is the prefix mmengine uses for plain local paths; force replaces its loader.
    CheckpointLoader.register_scheme(prefixes="", loader=load_from_local, force=True)


_PRETTY: dict[tuple[str, bool], str] = {}  # (repr of the config's dict, yapf on) -> text
_PRETTY_MOST = 32  # configs remembered per process (a study stage has one)


def _memoise_pretty_text() -> None:
    """Replace ``mmengine.config.Config.pretty_text`` by a memoised one (fix 5)."""
    from mmengine.config import Config

    formatted = Config.pretty_text
    if getattr(formatted.fget, "_mats_memoised", False):
        return

    def pretty_text(self: Config) -> str:
        key = (repr(self.to_dict()), bool(self._format_python_code))
        text = _PRETTY.get(key)
        if text is None:
            text = formatted.fget(self)
            if len(_PRETTY) >= _PRETTY_MOST:
                _PRETTY.clear()
            _PRETTY[key] = text
        return text

    memoised = property(pretty_text, doc=formatted.__doc__)
    pretty_text._mats_memoised = True  # type: ignore[attr-defined]
    Config.pretty_text = memoised  # type: ignore[method-assign,assignment]


def apply() -> None:
    """Apply every fix once per process (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    # Fix 4: mmcv-lite lacks the compiled MultiScaleDeformableAttention, which MATS never uses.
    warnings.filterwarnings(
        "ignore", message="Fail to import ``MultiScaleDeformableAttention``", category=UserWarning
    )
    install_drn_stand_in()
    _register_checkpoint_loader()
    _memoise_pretty_text()
    _APPLIED = True
