"""Transformer parts of the video ViT, named like MMAction2's ``vit_mae.py``.

Parameter names match mmaction2 1.2.0's ``VisionTransformer`` (``attn.q_bias``,
``mlp.layers.0.0``, ...), so its VideoMAE checkpoints load without renaming. Attention runs
through ``torch.nn.functional.scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Attention",
    "Block",
    "DropPath",
    "Mlp",
    "PatchEmbed",
    "init_vit_weights",
    "sinusoid_table",
]


def sinusoid_table(num_positions: int, dims: int) -> Tensor:
    """Fixed sine-cosine position table, ``(1, num_positions, dims)`` float32.

    Computed in float64 like MMAction2's ``get_sinusoid_encoding`` so tables agree bit for bit.
    """
    vec = torch.arange(dims, dtype=torch.float64)
    vec = torch.pow(10000, -((vec - vec % 2) / dims)).view(1, -1)  # (1, D)
    table = torch.arange(num_positions).view(-1, 1) * vec  # (N, D)
    table[:, 0::2].sin_()
    table[:, 1::2].cos_()
    return table.to(torch.float32).unsqueeze(0)


class PatchEmbed(nn.Module):
    """Tubelet embedding: Conv3d with kernel = stride = ``(t_s, p, p)``.

    ``(B, C, T, H, W)`` → ``(B, D, t, h, w)``; named ``projection`` as in mmcv's PatchEmbed.
    """

    def __init__(self, in_channels: int, dims: int, tubelet_size: int, patch_size: int) -> None:
        super().__init__()
        kernel = (tubelet_size, patch_size, patch_size)
        self.projection = nn.Conv3d(in_channels, dims, kernel_size=kernel, stride=kernel)

    def forward(self, video: Tensor) -> Tensor:
        return self.projection(video)


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch per sample with probability ``p``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Attention(nn.Module):
    """Multi-head self-attention with VideoMAE's q/v-only bias.

    Input and output ``(B, N, D)``.
    """

    def __init__(
        self,
        dims: int,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dims % num_heads:
            raise ValueError(f"width {dims} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dims, dims * 3, bias=False)
        self.q_bias: nn.Parameter | None = None
        self.v_bias: nn.Parameter | None = None
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dims))
            self.v_bias = nn.Parameter(torch.zeros(dims))
        self.proj = nn.Linear(dims, dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dims = x.shape
        bias = None
        if self.q_bias is not None and self.v_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias)  # (B, N, 3D)
        qkv = qkv.reshape(batch, tokens, 3, self.num_heads, dims // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, D / heads)
        drop = self.attn_drop if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)  # (B, heads, N, D/h)
        out = out.transpose(1, 2).reshape(batch, tokens, dims)
        return self.proj_drop(self.proj(out))


class Mlp(nn.Module):
    """Two-layer GELU MLP laid out like mmcv's ``FFN`` (``layers.0.0``, ``layers.1``)."""

    def __init__(self, dims: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(dims, hidden), nn.GELU(), nn.Dropout(drop)),
            nn.Linear(hidden, dims),
            nn.Dropout(drop),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class Block(nn.Module):
    """Pre-norm transformer block, ``(B, N, D) -> (B, N, D)``, optional layer scale."""

    def __init__(
        self,
        dims: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        init_values: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dims, eps=1e-6)
        self.attn = Attention(dims, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path: nn.Module = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dims, eps=1e-6)
        self.mlp = Mlp(dims, int(dims * mlp_ratio), drop)
        self.gamma_1: nn.Parameter | None = None
        self.gamma_2: nn.Parameter | None = None
        if init_values > 0:
            self.gamma_1 = nn.Parameter(init_values * torch.ones(dims))
            self.gamma_2 = nn.Parameter(init_values * torch.ones(dims))

    def forward(self, x: Tensor) -> Tensor:
        if self.gamma_1 is not None and self.gamma_2 is not None:
            x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x)))
            return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def init_vit_weights(module: nn.Module) -> None:
    """VideoMAE's initialisation: truncated-normal Linear (std 0.02), unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
