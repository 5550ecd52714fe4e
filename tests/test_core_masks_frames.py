"""Baseline masks, frame-pair selection and tubelet patchify."""

import pytest
import torch

from mats_lab.core.frames import select_tubelets, tubelet_counts
from mats_lab.core.masks import random_masking, tube_masking
from mats_lab.core.patchify import (
    denormalize_tubelets,
    gather_tubelets,
    normalize_tubelets,
    normalized_pixel_targets,
    patchify,
    unpatchify,
)


def test_tube_masking_videomae_counts_and_same_mask_each_tubelet():
    g = torch.Generator().manual_seed(0)
    vis, tgt = tube_masking(2, 8, 196, 0.1, generator=g)
    assert vis.shape == (2, 160) and tgt.shape == (2, 1408)  # 20 visible per tubelet
    per_tubelet = (vis % 196).reshape(2, 8, 20)
    assert torch.all(per_tubelet == per_tubelet[:, :1])
    for b in range(2):
        assert sorted(vis[b].tolist() + tgt[b].tolist()) == list(range(1568))


def test_random_masking_counts_and_variety():
    a, ta = random_masking(1, 100, 0.25, torch.Generator().manual_seed(0))
    b, _ = random_masking(1, 100, 0.25, torch.Generator().manual_seed(1))
    assert a.shape == (1, 25) and ta.shape == (1, 75)
    assert not torch.equal(a, b)


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_masks_reject_degenerate_ratios(ratio):
    with pytest.raises(ValueError):
        tube_masking(1, 2, 16, ratio)
    with pytest.raises(ValueError):
        random_masking(1, 16, ratio)


def test_tubelet_counts_follow_the_top_set():
    scores = torch.zeros(1, 4 * 5)
    scores[0, 10:13] = 5.0  # three strong tokens in tubelet 2
    scores[0, 16] = 4.0  # one in tubelet 3
    assert tubelet_counts(scores, 4, 0.2).tolist() == [[0, 0, 3, 1]]


def test_select_tubelets_test_mode_top_counts_in_temporal_order():
    counts = torch.tensor([[0, 5, 1, 7, 0, 2]])
    assert select_tubelets(counts, 3, sample=False).tolist() == [[1, 3, 5]]


def test_select_tubelets_training_draw_respects_weights():
    counts = torch.tensor([[0, 0, 10, 0, 10, 0]])
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert select_tubelets(counts, 2, sample=True, generator=g).tolist() == [[2, 4]]


def test_select_tubelets_uniform_when_all_zero_and_never_repeats():
    counts = torch.zeros(1, 12, dtype=torch.long)
    seen = set()
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        pick = select_tubelets(counts, 8, sample=True, generator=g)[0].tolist()
        assert len(set(pick)) == 8 and pick == sorted(pick)
        seen.update(pick)
    assert seen == set(range(12))


def test_patchify_roundtrip_and_raster_channel_fastest_layout():
    video = torch.arange(2 * 3 * 4 * 8 * 8, dtype=torch.float32).reshape(2, 3, 4, 8, 8)
    patches = patchify(video, 2, 4)  # (B, N, P, C)
    assert patches.shape == (2, 2 * 2 * 2, 2 * 4 * 4, 3)
    assert torch.equal(unpatchify(patches, (2, 2, 2), 2, 4), video)
    assert torch.equal(unpatchify(patches.flatten(2), (2, 2, 2), 2, 4), video)
    # token 3 = tubelet 0, row 1, col 1; its first value is pixel (c=0, t=0, y=4, x=4)
    assert patches[0, 3, 0, 0] == video[0, 0, 0, 4, 4]
    assert patches[0, 3, 0, 1] == video[0, 1, 0, 4, 4]  # channel fastest


def test_normalized_targets_per_tubelet_per_channel():
    video = torch.rand(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 255
    mean = torch.tensor([100.0, 110.0, 120.0]).view(3, 1, 1, 1)
    std = torch.tensor([50.0, 55.0, 60.0]).view(3, 1, 1, 1)
    normed_input = (video - mean) / std
    targets = normalized_pixel_targets(normed_input, 2, 4, mean, std)  # (1, N, P*C)
    t = targets.reshape(1, 8, 32, 3)
    torch.testing.assert_close(t.mean(dim=2), torch.zeros(1, 8, 3), atol=1e-4, rtol=0)
    torch.testing.assert_close(t.std(dim=2), torch.ones(1, 8, 3), atol=1e-3, rtol=0)
    normed, m, s = normalize_tubelets(patchify(video, 2, 4))
    # pixels up to 255 in float32: a round trip is exact to a few units in the last place of
    # 255 (~3e-5), whatever the pixel's own size (a relative tolerance fails on dark pixels)
    torch.testing.assert_close(
        denormalize_tubelets(normed, m, s), patchify(video, 2, 4), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(normed.flatten(2), targets, atol=1e-4, rtol=0)


def test_targets_of_some_tokens_equal_the_rows_of_all_targets():
    video = torch.randn(2, 3, 4, 8, 16)  # grid (2, 2, 4): N = 16
    mean = torch.tensor([100.0, 110.0, 120.0]).view(3, 1, 1, 1)
    std = torch.tensor([50.0, 55.0, 60.0]).view(3, 1, 1, 1)
    idx = torch.tensor([[0, 5, 7, 15], [3, 4, 9, 12]])
    rows = idx[:, :, None]
    picked = gather_tubelets(video, 2, 4, idx)  # (B, M, P, C)
    full = patchify(video, 2, 4)
    assert torch.equal(picked, full.gather(1, rows[..., None].expand(-1, -1, 32, 3)))
    all_targets = normalized_pixel_targets(video, 2, 4, mean, std)  # (B, N, P*C)
    some = normalized_pixel_targets(video, 2, 4, mean, std, token_idx=idx)
    torch.testing.assert_close(some, all_targets.gather(1, rows.expand(-1, -1, 96)))
