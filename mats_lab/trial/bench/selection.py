"""Time token scoring and selection inside the MATS training steps themselves.

:class:`SelectionProbe` hooks a MATS backbone: the span from the end of the patch embedding
(forward hook of ``patch_embed``) to the start of the first block (pre-hook of
``blocks[0]``) is exactly the selection work of a forward — the motion scores, the choice of
indices (the pre-training split or the fine-tuning top-k) and the pick of the kept
embeddings with their position embeddings — in the step's own caches and allocator state.
Timing the same calls apart from the step gives a different figure: in a tight loop they run
faster than in a step, straight after a step slower.

On CPU each span is read with ``perf_counter`` and ``process_time``; on a GPU with a pair of
CUDA events (no synchronisation inside the step), read once the step has been synchronised.
"""

from __future__ import annotations

import time
from types import TracebackType

import torch
from torch import nn

from mats_lab.models.vit import VideoViT

__all__ = ["SelectionProbe"]


class SelectionProbe:
    """Collect the selection span of every forward of ``backbone`` while entered.

    Args:
        backbone: a :class:`VideoViT` that selects tokens (``keep_ratio < 1``).
    """

    def __init__(self, backbone: VideoViT) -> None:
        if backbone.keep_ratio >= 1.0:
            raise ValueError("this backbone keeps every token: there is no selection to time")
        self.backbone = backbone
        self._cuda = backbone.pos_embed.device.type == "cuda"
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._start: tuple[float, float] | torch.cuda.Event | None = None
        self._wall: list[float] = []
        self._cpu: list[float] = []
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    def _begin(self, *_: object) -> None:
        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self._start = event
        else:
            self._start = (time.perf_counter(), time.process_time())

    def _end(self, *_: object) -> None:
        start, self._start = self._start, None
        if start is None:  # blocks run without a patch embedding before (not a MATS forward)
            return
        if isinstance(start, torch.cuda.Event):
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events.append((start, end))
        else:
            self._wall.append(time.perf_counter() - start[0])
            self._cpu.append(time.process_time() - start[1])

    def __enter__(self) -> SelectionProbe:
        first_block: nn.Module = self.backbone.blocks[0]
        self._handles = [
            self.backbone.patch_embed.register_forward_hook(self._begin),
            first_block.register_forward_pre_hook(self._end),
        ]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def spans(self) -> tuple[list[float], list[float]]:
        """``(wall seconds, process CPU seconds)`` per forward so far (on a GPU the CPU list
        is empty); synchronises the device first."""
        if self._events:
            torch.cuda.synchronize()
            wall = [start.elapsed_time(end) / 1e3 for start, end in self._events]
            return wall, []
        return list(self._wall), list(self._cpu)
