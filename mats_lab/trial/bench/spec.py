"""What ``mats-lab bench`` measures: model sizes, clip shape and the four workloads.

Plain data, no torch: the CLI and the child processes of the memory measurement share it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

__all__ = [
    "FINETUNE_KEEP",
    "MODEL_SIZES",
    "PAIRS",
    "PRETRAIN_KEEP",
    "VISIBLE_RATIO",
    "WORKLOADS",
    "BenchSpec",
    "ModelSize",
]

# The paper's operating points (METHOD §2, §3).
PRETRAIN_KEEP = 0.3  # MATS pre-training candidates, fraction of all N tokens
VISIBLE_RATIO = 0.1  # visible tokens in both MATS and VideoMAE (tube) pre-training
FINETUNE_KEEP = 0.6  # MATS fine-tuning

# name -> (kind, masking or keep ratio); the pairs are (videomae_*, mats_*) and
# (full_finetune, mats_finetune): baseline first.
WORKLOADS: dict[str, tuple[str, str | float]] = {
    "videomae_pretrain": ("pretrain", "tube"),
    "mats_pretrain": ("pretrain", "mats"),
    "full_finetune": ("finetune", 1.0),
    "mats_finetune": ("finetune", FINETUNE_KEEP),
}
PAIRS = {
    "pretrain": ("videomae_pretrain", "mats_pretrain"),
    "finetune": ("full_finetune", "mats_finetune"),
}


@dataclass(frozen=True)
class ModelSize:
    """A ViT size with its MAE decoder and the default clip for the bench.

    Attributes:
        embed_dims, depth, num_heads, patch_size: the encoder.
        decoder_dims, decoder_depth, decoder_heads: the pre-training decoder (VideoMAE's).
        num_classes: fine-tuning head outputs.
        frames, size, batch: default clip ``(T, S, S)`` and batch ``B``.
    """

    embed_dims: int
    depth: int
    num_heads: int
    patch_size: int
    decoder_dims: int
    decoder_depth: int
    decoder_heads: int
    num_classes: int
    frames: int
    size: int
    batch: int


MODEL_SIZES: dict[str, ModelSize] = {
    # mm_configs/*tiny*: width 128, depth 4, patch 8; decoder 64 x 1 block; 16 clips a batch
    "tiny": ModelSize(128, 4, 4, 8, 64, 1, 2, 8, frames=8, size=64, batch=16),
    # ViT-S/16 with VideoMAE's ViT-S decoder (192 wide, 4 blocks, 3 heads)
    "small": ModelSize(384, 12, 6, 16, 192, 4, 3, 400, frames=16, size=112, batch=4),
    # ViT-B/16 with VideoMAE's ViT-B decoder (384 wide, 4 blocks, 6 heads)
    "base": ModelSize(768, 12, 12, 16, 384, 4, 6, 400, frames=16, size=224, batch=1),
}


@dataclass(frozen=True)
class BenchSpec:
    """One bench run.

    Attributes:
        model: a key of :data:`MODEL_SIZES`.
        frames, size, batch: clip ``(T, S, S)`` and batch ``B``; ``None`` takes the model's
            default.
        device: ``cpu`` or ``cuda``.
        warmup: untimed steps of each workload before timing.
        repeats: timed steps of each workload (interleaved with its pair partner).
        threads: torch intra-op threads (``None``: torch's default).
        memory_steps: steps run in each fresh child process that measures peak memory.
        video: real clip for the data-pipeline throughput (``None`` skips it).
        pipeline_repeats: clips decoded per pipeline (interleaved).
        seed: seeds the weights, the input clip and the masking draws.
        tubelet_size: frames per token.
        amp: run the steps under bfloat16 autocast (the usual GPU setting).
        pairs: which comparisons to run, keys of :data:`PAIRS`.
    """

    model: str = "tiny"
    frames: int | None = None
    size: int | None = None
    batch: int | None = None
    device: str = "cpu"
    warmup: int = 2
    repeats: int = 7
    threads: int | None = None
    memory_steps: int = 3
    video: str | None = None
    pipeline_repeats: int = 12
    seed: int = 0
    tubelet_size: int = 2
    amp: bool = False
    pairs: tuple[str, ...] = ("pretrain", "finetune")

    def __post_init__(self) -> None:
        if self.model not in MODEL_SIZES:
            raise ValueError(f"model must be one of {sorted(MODEL_SIZES)}, got {self.model!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.repeats < 1 or self.warmup < 0 or self.memory_steps < 1:
            raise ValueError("repeats and memory_steps must be >= 1, warmup >= 0")
        unknown = set(self.pairs) - set(PAIRS)
        if unknown or not self.pairs:
            raise ValueError(f"pairs must be among {sorted(PAIRS)}, got {list(self.pairs)}")

    @property
    def dims(self) -> ModelSize:
        return MODEL_SIZES[self.model]

    def resolved(self) -> BenchSpec:
        """This spec with the model's default clip filled in where ``None``."""
        d = self.dims
        return replace(
            self,
            frames=self.frames if self.frames is not None else d.frames,
            size=self.size if self.size is not None else d.size,
            batch=self.batch if self.batch is not None else d.batch,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BenchSpec:
        fields = json.loads(text)
        fields["pairs"] = tuple(fields.get("pairs", PAIRS))
        return cls(**fields)
