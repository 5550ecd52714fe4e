"""Token scoring and selection: the contract every MATS model relies on."""

import pytest
import torch

from mats_lab.core.motion import token_motion_scores, tubelet_grid_scores
from mats_lab.core.selection import pretrain_split, select_topk, sort_scores


def moving_patch_embeddings(t: int = 4, h: int = 3, w: int = 3, d: int = 8) -> torch.Tensor:
    """(1, t*h*w, d): constant embeddings except one patch that changes every tubelet."""
    e = torch.ones(1, t, h * w, d)
    for i in range(t):
        e[0, i, 4] = float(i) * 3.0  # token (1, 1) of each tubelet moves
    return e.reshape(1, t * h * w, d)


def test_scores_shape_and_first_tubelet_copies_second():
    e = torch.randn(2, 5 * 6, 4)
    s = token_motion_scores(e, num_tubelets=5)
    assert s.shape == (2, 30)
    grid = s.reshape(2, 5, 6)
    assert torch.equal(grid[:, 0], grid[:, 1])
    expected = (e.reshape(2, 5, 6, 4)[:, 3] - e.reshape(2, 5, 6, 4)[:, 2]).norm(dim=-1)
    torch.testing.assert_close(grid[:, 3], expected)


def test_scores_any_tubelet_count_and_still_content_is_zero():
    for t in (2, 3, 7):
        e = torch.randn(1, 1, 5, 3).expand(1, t, 5, 3).reshape(1, t * 5, 3)
        assert torch.count_nonzero(token_motion_scores(e, t)) == 0


def test_scores_carry_no_gradient():
    e = torch.randn(1, 8, 4, requires_grad=True)
    assert not token_motion_scores(e, 2).requires_grad


@pytest.mark.parametrize("t", [1, 3])
def test_scores_reject_bad_tubelet_counts(t):
    with pytest.raises(ValueError, match="num_tubelets"):
        token_motion_scores(torch.randn(1, 8, 4), t)
    with pytest.raises(ValueError, match="at least 2 tubelets"):
        tubelet_grid_scores(torch.randn(1, 1, 4, 4))


def test_topk_exact_count_and_raster_order():
    scores = torch.rand(3, 1568)
    keep = select_topk(scores, 0.6)
    assert keep.shape == (3, 940)
    assert torch.all(keep[:, 1:] > keep[:, :-1])
    # they really are the top scores
    kth = scores.sort(dim=1, descending=True).values[:, 939:940]
    assert torch.all(scores.gather(1, keep) >= kth)


def test_topk_ties_go_to_lower_index():
    scores = torch.zeros(1, 10)
    scores[0, 7] = 1.0
    assert select_topk(scores, 0.3).tolist() == [[0, 1, 7]]


def test_topk_ties_random_with_generator_and_deterministic_per_seed():
    scores = torch.zeros(1, 100)
    picks = set()
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        a = select_topk(scores, 0.1, generator=g)
        b = select_topk(scores, 0.1, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(a, b)
        assert a.shape == (1, 10)
        picks.add(tuple(a[0].tolist()))
    assert len(picks) == 5


def test_keep_ratio_one_keeps_everything():
    assert torch.equal(select_topk(torch.rand(2, 16), 1.0), torch.arange(16).expand(2, 16))


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5, 0.01])
def test_out_of_range_ratios_raise(ratio):
    with pytest.raises(ValueError, match="keep_ratio"):
        select_topk(torch.rand(1, 16), ratio)


def test_planted_moving_patch_is_selected_first():
    e = moving_patch_embeddings()
    s = token_motion_scores(e, 4)
    order = sort_scores(s)[0]
    assert set(order[:4].tolist()) == {4, 13, 22, 31}  # the patch in every tubelet
    assert select_topk(s, 4 / 36).tolist() == [[4, 13, 22, 31]]


def test_pretrain_split_counts_disjoint_and_within_top():
    scores = torch.rand(4, 1568)
    g = torch.Generator().manual_seed(0)
    vis, tgt = pretrain_split(scores, 0.3, 0.1, generator=g)
    assert vis.shape == (4, 156) and tgt.shape == (4, 314)
    top = select_topk(scores, 0.3)
    for b in range(4):
        v, t = set(vis[b].tolist()), set(tgt[b].tolist())
        assert not v & t
        assert v | t == set(top[b].tolist())
    assert torch.all(vis[:, 1:] > vis[:, :-1]) and torch.all(tgt[:, 1:] > tgt[:, :-1])


def test_pretrain_split_deterministic_with_generator_varies_across_seeds():
    scores = torch.rand(1, 200)
    runs = [
        pretrain_split(scores, 0.5, 0.2, torch.Generator().manual_seed(s))[0] for s in (1, 1, 2)
    ]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_pretrain_split_rejects_visible_not_below_keep():
    with pytest.raises(ValueError, match="visible_ratio"):
        pretrain_split(torch.rand(1, 100), 0.3, 0.3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_random_tie_breaking_keeps_the_score_order_and_is_uniform(dtype):
    # negative, signed-zero and infinite scores keep their order; ties split about evenly
    row = [-3.0, -0.0, 0.0, 1e-30, -1e-30, 2.5, float("inf"), -float("inf"), 1.0, 1.0]
    scores = torch.tensor([row], dtype=dtype).repeat(2000, 1)
    order = sort_scores(scores, torch.Generator().manual_seed(0))  # (2000, 10)
    ranked = scores.gather(1, order).float()
    assert (ranked[:, :-1] >= ranked[:, 1:]).all()
    assert (order[:, 0] == 6).all() and (order[:, -1] == 7).all()
    first_one = (order[:, 2] == 8).float().mean().item()  # 1.0 at 8 or 9, ranks 2 and 3
    assert 0.45 < first_one < 0.55
    zeros_first = (order[:, 5] == 1).float().mean().item()  # -0.0 and 0.0 tie at ranks 5, 6
    assert 0.45 < zeros_first < 0.55


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_top_indices_match_the_full_sort(dtype):
    from mats_lab.core.selection import top_indices

    g = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 5, (16, 40), generator=g).to(dtype)  # many ties
    assert torch.equal(top_indices(scores, 12), sort_scores(scores)[:, :12])
    drawn = top_indices(scores, 12, torch.Generator().manual_seed(0))
    kth = sort_scores(scores)[:, 11:12]  # the 12th best score bounds every pick
    assert (scores.gather(1, drawn) >= scores.gather(1, kth)).all()
    assert (scores.gather(1, drawn)[:, :-1] >= scores.gather(1, drawn)[:, 1:]).all()
