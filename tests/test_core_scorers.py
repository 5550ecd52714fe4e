"""The token scorers behind one interface: each finds the moving patch."""

import pytest
import torch

from mats_lab.core.scorers import motion_map_scores, pixel_difference_scores

TINY = dict(img_size=32, patch_size=8, embed_dims=48, depth=1, num_heads=4, num_frames=8)


def moving_square(frames: int = 8) -> torch.Tensor:
    """(1, 3, T, 32, 32): a bright square moving right along the patch row 1."""
    x = torch.zeros(1, 3, frames, 32, 32)
    for f in range(frames):
        x[0, :, f, 8:16, 2 * f : 2 * f + 8] = 1.0
    return x


def test_pixel_scores_are_zero_on_still_content_and_high_where_it_moves():
    scores = pixel_difference_scores(moving_square(), tubelet_size=2, patch_size=8)
    assert scores.shape == (1, 4, 16)
    assert torch.equal(scores[:, 0], scores[:, 1])
    rows = scores.reshape(1, 4, 4, 4)
    assert rows[:, :, 1].sum() > 0 and rows[:, :, [0, 2, 3]].sum() == 0


def test_motion_map_scores_average_over_tubelet_and_patch():
    motion = torch.zeros(1, 4, 16, 16)
    motion[0, 2:4, 0:8, 8:16] = 2.0  # second tubelet, top-right patch
    scores = motion_map_scores(motion, tubelet_size=2, patch_size=8)
    assert scores.shape == (1, 2, 4)
    assert scores[0, 1, 1] == 2.0 and scores.sum() == 2.0


@pytest.mark.parametrize("scorer", ["embedding", "pixel", "motion_vectors"])
def test_backbone_selects_the_moving_row_with_every_scorer(mm, scorer):
    from mmaction.registry import MODELS

    model = MODELS.build(
        dict(type="MATSVisionTransformer", keep_ratio=0.1, scorer=scorer, **TINY)
    ).eval()
    clip = moving_square()
    if scorer == "motion_vectors":
        motion = (clip[:, 0, 1:] - clip[:, 0, :-1]).abs()
        motion = torch.cat([motion[:, :1], motion], dim=1)  # (B, T, H, W)
        clip = torch.cat([clip, motion[:, None]], dim=1)  # colour + motion channel
    _, keep_idx, _ = model.forward_tokens(clip)
    assert keep_idx.shape == (1, 6)
    assert torch.all((keep_idx % 16) // 4 == 1), keep_idx


def test_motion_vectors_scorer_needs_the_motion_channel_and_bad_scorer_raises(mm):
    from mmaction.registry import MODELS

    model = MODELS.build(
        dict(type="MATSVisionTransformer", keep_ratio=0.5, scorer="motion_vectors", **TINY)
    )
    with pytest.raises(ValueError, match="motion channel"):
        model(torch.randn(1, 3, 8, 32, 32))
    with pytest.raises(ValueError, match="scorer"):
        MODELS.build(dict(type="MATSVisionTransformer", scorer="optical_flow", **TINY))
