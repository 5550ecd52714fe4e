"""``AutocastOptimWrapper``: mixed precision on whatever device the model is on.

MMEngine's ``AmpOptimWrapper`` refuses to be built without CUDA (or NPU/MLU/MUSA), so a config
that asks for bf16 could not even be built on a CPU machine, let alone tested there. This
wrapper does what it does on CUDA (``torch.autocast`` around the forward with ``dtype``; a
dynamic loss scaler for fp16) and, on the CPU, runs bf16 autocast, which torch supports there.
fp16 on the CPU is not a supported autocast: there the wrapper says so once and trains in fp32.
Everything else (gradient accumulation, clipping, state dicts) is ``OptimWrapper``'s.

MMAction2's classification heads compute their training accuracy with
``cls_scores.detach().cpu().numpy()``, which numpy refuses for bfloat16 (``TypeError: Got
unsupported ScalarType BFloat16``): every bf16 fine-tuning step would crash, on CUDA as on
the CPU. :func:`fp32_head_losses` (applied on import) hands the heads' loss float32 scores;
the loss is computed in float32 under autocast anyway.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

__all__ = ["AutocastOptimWrapper", "fp32_head_losses"]

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Autocast the forward pass to ``dtype`` on the model's device.

    Args:
        optimizer: the optimizer (built by MMEngine from the config).
        dtype: ``'bfloat16'`` or ``'float16'``.
        accumulative_counts: as ``OptimWrapper``.
        clip_grad: as ``OptimWrapper``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        dtype: str = "bfloat16",
        accumulative_counts: int = 1,
        clip_grad: dict | None = None,
    ) -> None:
        if dtype not in _DTYPES:
            raise ValueError(f"AutocastOptimWrapper dtype must be one of {sorted(_DTYPES)}")
        super().__init__(optimizer, accumulative_counts=accumulative_counts, clip_grad=clip_grad)
        self.cast_dtype = _DTYPES[dtype]
        device = "cuda" if torch.cuda.is_available() else "cpu"
        # fp16 overflows without loss scaling; bf16 has fp32's range and needs none.
        scale = self.cast_dtype == torch.float16 and device == "cuda"
        self.loss_scaler = torch.amp.GradScaler(device, enabled=scale)
        self._warned = False

    def _autocast_on(self, device_type: str) -> bool:
        if device_type == "cpu" and self.cast_dtype == torch.float16:
            if not self._warned:
                warnings.warn(
                    "precision fp16 has no CPU autocast: training in fp32 on the CPU "
                    "(bf16 autocast runs on the CPU)",
                    stacklevel=2,
                )
                self._warned = True
            return False
        return device_type in ("cpu", "cuda")

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        param = next(model.parameters(), None)
        device_type = param.device.type if param is not None else "cpu"
        enabled = self._autocast_on(device_type)
        with super().optim_context(model):
            with torch.autocast(device_type=device_type, dtype=self.cast_dtype, enabled=enabled):
                yield

    def backward(self, loss: torch.Tensor, **kwargs: object) -> None:
        self.loss_scaler.scale(loss).backward(**kwargs)  # type: ignore[arg-type]
        self._inner_count += 1

    def step(self, **kwargs: object) -> None:
        if not self.loss_scaler.is_enabled():
            super().step(**kwargs)
            return
        if self.clip_grad_kwargs:
            self.loss_scaler.unscale_(self.optimizer)
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update()

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["loss_scaler"] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        scaler = state_dict.pop("loss_scaler", None)
        if scaler:
            self.loss_scaler.load_state_dict(scaler)
        super().load_state_dict(state_dict)


def fp32_head_losses() -> None:
    """Make MMAction2's ``BaseHead.loss_by_feat`` take float32 scores (idempotent)."""
    from mmaction.models.heads.base import BaseHead

    original = BaseHead.loss_by_feat
    if getattr(original, "_mats_lab_fp32", False):
        return

    def loss_by_feat(self: BaseHead, cls_scores: torch.Tensor, data_samples: list) -> dict:
        return original(self, cls_scores.float(), data_samples)

    loss_by_feat._mats_lab_fp32 = True  # type: ignore[attr-defined]
    BaseHead.loss_by_feat = loss_by_feat  # type: ignore[method-assign]


fp32_head_losses()
