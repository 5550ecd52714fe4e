"""The video ViT with motion-aware token selection (METHOD §1, §3, §4).

``VideoViT`` is VideoMAE's ViT (same parameter names as mmaction2's ``VisionTransformer``)
with three switches:

- ``keep_ratio``: keep the top ``int(keep_ratio * N)`` tokens by motion score, in training
  and, unless ``drop_at_test=False``, at validation and test. ``1.0`` keeps all and computes
  exactly what the plain ViT computes.
- ``candidate_ratio``: the clip holds ``candidate_ratio`` times more frames than the model
  uses; the informative tubelets are chosen (METHOD §4) and the rest of the model sees a
  normal ``num_frames`` clip.
- ``temporal_center``: subtract each pixel's mean over time before the patch embedding, so
  the encoder sees only what changes (still background becomes exactly 0); the motion
  scores, being differences, are unchanged by it.
- the encoder entry points (:meth:`VideoViT.embed`, :meth:`VideoViT.encode`) that the
  masked-autoencoder pre-training reuses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mats_lab.core.frames import gather_tubelet_frames, select_tubelets, tubelet_counts
from mats_lab.core.motion import temporal_center as center_over_time
from mats_lab.core.scorers import (
    NONNEGATIVE_SCORERS,
    SCORERS,
    motion_map_scores,
    pixel_difference_scores,
    tubelet_grid_scores,
)
from mats_lab.core.selection import count_for_ratio, select_topk
from mats_lab.models.layers import Block, PatchEmbed, init_vit_weights, sinusoid_table

__all__ = ["Prepared", "VideoViT"]


@dataclass
class Prepared:
    """A clip after embedding, frame selection and scoring, before the blocks.

    Attributes:
        embeddings: ``(B, N, D)`` tubelet embeddings (no position embedding), raster order.
        scores: ``(B, N)`` motion scores, or ``None`` when not asked for.
        video: ``(B, C, T, H, W)`` the frames actually used (after frame selection), without
            any motion channel, as given (not temporally centred; the pre-training's pixel
            targets come from it, centred there when the encoder's input is).
        grid: ``(t, h, w)`` token grid.
        tubelet_idx: ``(B, t)`` which candidate tubelets were kept (``arange`` without
            frame selection).
    """

    embeddings: Tensor
    scores: Tensor | None
    video: Tensor
    grid: tuple[int, int, int]
    tubelet_idx: Tensor


class VideoViT(nn.Module):
    """VideoMAE ViT with motion-aware token and frame selection.

    Args:
        img_size: input height = width the position table is built for.
        patch_size: ``p``.
        in_channels: ``C``.
        embed_dims: ``D``.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / ``D``.
        qkv_bias: q and v biases (VideoMAE style).
        drop_rate, attn_drop_rate, drop_path_rate: regularisation (drop path grows linearly
            with depth).
        init_values: layer-scale init (0 disables it).
        num_frames: ``T`` frames the model sees (after frame selection).
        tubelet_size: ``t_s`` frames per token.
        use_mean_pooling: mean-pool the tokens then ``fc_norm`` (fine-tuning head input);
            otherwise a final ``norm`` and the tokens are returned (pre-training encoder).
        use_learnable_pos_emb: a learned position table instead of the fixed sinusoid one.
        keep_ratio: fraction of all ``N`` tokens kept, in ``(0, 1]``.
        drop_at_test: also drop tokens in eval mode (the published behaviour).
        candidate_ratio: ``alpha``; ``None`` disables adaptive frame selection.
        seed: seeds the generator of the training-time frame draw (``None``: torch's RNG).
        scorer: how tokens are scored: ``embedding`` (MATS), ``pixel`` (raw pixel-difference
            energy) or ``motion_vectors`` (the clip carries one extra channel after the
            ``in_channels`` colour channels: a per-pixel codec motion magnitude map).
        temporal_center: subtract each pixel's mean over the clip's frames (all candidates
            with frame selection) from the colour channels before the patch embedding. Still
            content then reaches the encoder as exactly 0; the scores are unchanged (they are
            differences), and a motion channel is left as it is.
    """

    all_tubelets: Tensor  # (t,) buffer: the tubelet indices of a clip without frame selection

    pos_embed: Tensor

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_channels: int = 3,
        embed_dims: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        init_values: float = 0.0,
        num_frames: int = 16,
        tubelet_size: int = 2,
        use_mean_pooling: bool = True,
        use_learnable_pos_emb: bool = False,
        keep_ratio: float = 1.0,
        drop_at_test: bool = True,
        candidate_ratio: float | None = None,
        seed: int | None = None,
        scorer: str = "embedding",
        temporal_center: bool = False,
    ) -> None:
        super().__init__()
        if scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {SCORERS}, got {scorer!r}")
        if num_frames % tubelet_size:
            raise ValueError(f"num_frames={num_frames} is not a multiple of {tubelet_size}")
        if img_size % patch_size:
            raise ValueError(f"img_size={img_size} is not a multiple of patch {patch_size}")
        grid = img_size // patch_size
        self.num_tubelets = num_frames // tubelet_size
        if self.num_tubelets < 2 and keep_ratio < 1.0:
            raise ValueError("token selection needs at least 2 tubelets (num_frames >= 2 t_s)")
        count_for_ratio(keep_ratio, self.num_tubelets * grid * grid, "keep_ratio")
        if candidate_ratio is not None and candidate_ratio < 1.0:
            raise ValueError(f"candidate_ratio must be >= 1, got {candidate_ratio}")
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.num_frames = num_frames
        self.embed_dims = embed_dims
        self.grid_size = (grid, grid)
        self.keep_ratio = keep_ratio
        self.drop_at_test = drop_at_test
        self.candidate_ratio = candidate_ratio
        self.seed = seed
        self.scorer = scorer
        self.in_channels = in_channels
        self.temporal_center = temporal_center
        self._generator: torch.Generator | None = None

        self.patch_embed = PatchEmbed(in_channels, embed_dims, tubelet_size, patch_size)
        num_patches = self.num_tubelets * grid * grid
        self.use_learnable_pos_emb = use_learnable_pos_emb
        if use_learnable_pos_emb:
            self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, embed_dims))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        else:
            # Fixed: not saved, so clips of other lengths and old checkpoints load alike.
            self.register_buffer(
                "pos_embed", sinusoid_table(num_patches, embed_dims), persistent=False
            )
        self.register_buffer("all_tubelets", torch.arange(self.num_tubelets), persistent=False)
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            Block(
                embed_dims,
                num_heads,
                mlp_ratio,
                qkv_bias,
                drop_rate,
                attn_drop_rate,
                r,
                init_values,
            )
            for r in rates
        )
        self.use_mean_pooling = use_mean_pooling
        if use_mean_pooling:
            self.norm: nn.Module = nn.Identity()
            self.fc_norm: nn.Module | None = nn.LayerNorm(embed_dims, eps=1e-6)
        else:
            self.norm = nn.LayerNorm(embed_dims, eps=1e-6)
            self.fc_norm = None
        init_vit_weights(self)

    def _load_from_state_dict(
        self, state_dict: dict, prefix: str, *args: object, **kwargs: object
    ) -> None:
        # Checkpoints of mmaction2's VisionTransformer carry the fixed sinusoid table as a
        # buffer; ours is recomputed (and may differ in length), so an incoming copy is ignored.
        if not self.use_learnable_pos_emb:
            state_dict.pop(prefix + "pos_embed", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- pieces -----------------------------------------------------------------------------

    def embed(self, video: Tensor) -> Tensor:
        """Patch embedding on the token grid.

        Args:
            video: ``(B, C, T, H, W)``.

        Returns:
            ``(B, t, L, D)`` embeddings before the position embedding, ``L = h * w``.
        """
        e = self.patch_embed(video)  # (B, D, t, h, w)
        return e.flatten(3).permute(0, 2, 3, 1)  # (B, t, L, D)

    def generator(self, device: torch.device) -> torch.Generator | None:
        """The seeded generator of the random draws, made on first use on ``device``."""
        if self.seed is None or device.type == "meta":  # meta: shapes only, no draws
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
        return self._generator

    def score_grid(self, grid: Tensor, video: Tensor, motion: Tensor | None) -> Tensor:
        """``(B, t, L)`` scores with the configured scorer.

        Args:
            grid: ``(B, t, L, D)`` embeddings; video: ``(B, C, T, H, W)``;
            motion: ``(B, T, H, W)`` codec motion map (``motion_vectors`` scorer only).
        """
        if self.scorer == "embedding":
            return tubelet_grid_scores(grid)
        if self.scorer == "pixel":
            return pixel_difference_scores(video, self.tubelet_size, self.patch_size)
        if motion is None:
            raise ValueError("the motion_vectors scorer needs the motion channel in the clip")
        return motion_map_scores(motion, self.tubelet_size, self.patch_size)

    def split_motion(self, video: Tensor) -> tuple[Tensor, Tensor | None]:
        """Separate the codec motion channel (``motion_vectors`` scorer) from the colours.

        ``(B, C [+1], T, H, W)`` → ``((B, C, T, H, W), (B, T, H, W) or None)``.
        """
        if self.scorer != "motion_vectors":
            return video, None
        if video.shape[1] != self.in_channels + 1:
            raise ValueError(
                f"the motion_vectors scorer expects {self.in_channels} colour channels plus a "
                f"motion channel, got {video.shape[1]} channels"
            )
        return video[:, : self.in_channels], video[:, self.in_channels]

    def select_frames(
        self, grid: Tensor, video: Tensor, motion: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
        """Adaptive frame selection: keep the informative tubelets of the candidates.

        Args:
            grid: ``(B, t_c, L, D)`` candidate tubelet embeddings; video ``(B, C, T_c, H, W)``;
                motion ``(B, T_c, H, W)`` or ``None``.

        Returns:
            ``(grid (B, t, L, D), video (B, C, T, H, W), motion, tubelet_idx (B, t))``; the
            identity when the clip already has ``t`` tubelets.
        """
        batch, candidates, tokens, dims = grid.shape
        wanted = self.num_tubelets
        if candidates == wanted:
            return grid, video, motion, self.all_tubelets.expand(batch, wanted)
        if self.candidate_ratio is None or candidates < wanted:
            raise ValueError(
                f"clip has {candidates} tubelets but the model takes {wanted}: set "
                "candidate_ratio to select frames, or sample num_frames frames"
            )
        scores = self.score_grid(grid, video, motion).flatten(1)  # (B, t_c * L)
        counts = tubelet_counts(
            scores, candidates, self.keep_ratio, self.scores_nonnegative
        )  # (B, t_c)
        idx = select_tubelets(
            counts, wanted, sample=self.training, generator=self.generator(grid.device)
        )  # (B, t)
        grid = grid.gather(1, idx[:, :, None, None].expand(-1, -1, tokens, dims))
        video = gather_tubelet_frames(video, idx, self.tubelet_size)
        if motion is not None:
            motion = gather_tubelet_frames(motion[:, None], idx, self.tubelet_size)[:, 0]
        return grid, video, motion, idx

    def position_table(self, grid: tuple[int, int, int]) -> Tensor:
        """``(1, t * h * w, D)`` position embeddings for a token grid ``(t, h, w)``."""
        t, h, w = grid
        if t != self.num_tubelets:
            raise ValueError(
                f"clip has {t} tubelets after selection; the model takes "
                f"{self.num_tubelets} (num_frames={self.num_frames})"
            )
        table: Tensor = self.pos_embed
        if (h, w) != self.grid_size:  # other resolution: resample the spatial table
            table = table.reshape(t, *self.grid_size, self.embed_dims).permute(0, 3, 1, 2)
            table = F.interpolate(table, size=(h, w), mode="bicubic", align_corners=False)
            table = table.permute(0, 2, 3, 1).reshape(1, t * h * w, self.embed_dims)
        return table

    def positioned_tokens(self, prep: Prepared, keep_idx: Tensor | None) -> Tensor:
        """The kept embeddings with their position embeddings added.

        Picks the kept rows before adding, so dropped tokens are never copied or added to.
        The embeddings are picked by advanced indexing, not ``gather``: ``gather`` keeps its
        whole ``(B, N, D)`` source alive for the backward pass (its backward needs only the
        shape), indexing keeps the indices. The table's rows are picked with one
        ``index_select`` over the flattened indices (faster than a batched ``gather`` of the
        expanded table or advanced indexing on small token sets).

        Args:
            prep: the prepared clip.
            keep_idx: ``(B, K)`` token indices, or ``None`` for all ``N``.

        Returns:
            ``(B, K, D)``, or ``(B, N, D)`` without ``keep_idx``.
        """
        table = self.position_table(prep.grid)  # (1, N, D)
        if keep_idx is None:
            return prep.embeddings + table
        batch, count = keep_idx.shape
        rows = torch.arange(batch, device=keep_idx.device)[:, None]  # (B, 1)
        picked = table[0].index_select(0, keep_idx.reshape(-1))  # (B * K, D)
        return prep.embeddings[rows, keep_idx] + picked.view(batch, count, -1)

    def encode(self, tokens: Tensor) -> Tensor:
        """Run the blocks on tokens already picked (:meth:`positioned_tokens` picks them).

        Args:
            tokens: ``(B, K, D)`` kept embeddings with their position embeddings added.

        Returns:
            ``(B, K, D)`` after the blocks and ``norm`` (identity with mean pooling).
        """
        x = self.pos_drop(tokens)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    @property
    def scores_nonnegative(self) -> bool:
        """Whether every score of this model's scorer is ``+0.0`` or above (a faster sort key
        for the selection; the same tokens either way)."""
        return self.scorer in NONNEGATIVE_SCORERS

    def selecting(self) -> bool:
        """Whether tokens are dropped in the current mode."""
        return self.keep_ratio < 1.0 and (self.training or self.drop_at_test)

    # -- forward ----------------------------------------------------------------------------

    def prepare(self, video: Tensor, with_scores: bool) -> Prepared:
        """Embed, select frames and (optionally) score a clip.

        Args:
            video: ``(B, C [+1 motion], T, H, W)``, ``T = num_frames`` or the candidates.
            with_scores: compute the token scores of the frames kept.
        """
        video, motion = self.split_motion(video)
        pixels = center_over_time(video) if self.temporal_center else video
        grid = self.embed(pixels)  # (B, t_c, L, D)
        grid, video, motion, tubelet_idx = self.select_frames(grid, video, motion)
        batch, t, tokens_per_tubelet, dims = grid.shape
        scores = None
        if with_scores:
            scores = self.score_grid(grid, video, motion).reshape(batch, -1)  # (B, N)
        h = video.shape[-2] // self.patch_size
        w = video.shape[-1] // self.patch_size
        embeddings = grid.reshape(batch, t * tokens_per_tubelet, dims)  # (B, N, D)
        return Prepared(embeddings, scores, video, (t, h, w), tubelet_idx)

    def forward_tokens(self, video: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """Run the encoder on the selected tokens.

        Args:
            video: ``(B, C, T, H, W)``, ``T = num_frames`` (or the candidates).

        Returns:
            ``(tokens (B, K, D), keep_idx (B, K) or None, tubelet_idx (B, t))``.
        """
        prep = self.prepare(video, with_scores=self.selecting())
        keep_idx = None
        if prep.scores is not None:
            keep_idx = select_topk(
                prep.scores, self.keep_ratio, nonnegative=self.scores_nonnegative
            )  # (B, K)
        tokens = self.positioned_tokens(prep, keep_idx)  # (B, K, D)
        return self.encode(tokens), keep_idx, prep.tubelet_idx

    def forward(self, video: Tensor) -> Tensor:
        """``(B, C, T, H, W)`` → ``(B, D)`` pooled features with mean pooling, else the
        ``(B, K, D)`` tokens."""
        tokens, _, _ = self.forward_tokens(video)
        if self.fc_norm is not None:
            return self.fc_norm(tokens.mean(1))
        return tokens
