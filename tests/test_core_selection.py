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


@pytest.mark.parametrize("seed", [None, 0])
def test_the_nonnegative_key_picks_the_same_tokens_as_the_general_one(seed):
    from mats_lab.core.selection import top_indices

    g = torch.Generator().manual_seed(4)
    # ties at zero (still content), subnormals, huge values: all with the sign bit clear
    scores = torch.randint(0, 4, (8, 300), generator=g).float() * 1e-3
    scores[:, :5] = torch.tensor([0.0, 1e-40, 3e38, float("inf"), 1e-45])

    def draw(nonnegative: bool) -> torch.Tensor:
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        return top_indices(scores, 90, gen, nonnegative)

    def split(nonnegative: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return pretrain_split(scores, 0.3, 0.1, torch.Generator().manual_seed(1), nonnegative)

    assert torch.equal(draw(True), draw(False))
    (vis_fast, tgt_fast), (vis, tgt) = split(True), split(False)
    assert torch.equal(vis_fast, vis) and torch.equal(tgt_fast, tgt)


def test_every_candidate_is_equally_likely_to_be_visible_also_when_ties_decide_it():
    # 20 clear winners, then 236 tokens tied at 0 of which 44 join the K = 64 candidates by
    # the tie-break: a winner and a tie-break entrant must be shown equally often
    # (V / K = 32 / 64), so the visible draw must not reuse the tie-break's randomness.
    scores = torch.zeros(3000, 256)
    scores[:, :20] = torch.arange(1, 21).float()
    g = torch.Generator().manual_seed(0)
    vis, tgt = pretrain_split(scores, 0.25, 0.125, g, nonnegative=True)
    assert vis.shape == (3000, 32) and tgt.shape == (3000, 32)
    winners = (vis < 20).float().sum(1).mean().item()  # expected 20 / 2
    entrants = (vis >= 20).float().sum(1).mean().item()  # expected 44 / 2
    assert abs(winners - 10) < 0.15 and abs(entrants - 22) < 0.15
    # each tied token enters the candidates about equally often (44 of 236)
    kept = torch.cat([vis, tgt], 1).flatten()
    entered = torch.zeros(256).index_add_(0, kept, torch.ones(kept.numel())) / 3000
    assert (entered[:20] == 1).all()
    assert torch.allclose(entered[20:], torch.full((236,), 44 / 236), atol=0.03)


@pytest.mark.parametrize("scorer", ["embedding", "pixel"])
def test_the_scorers_said_to_be_nonnegative_never_set_the_sign_bit(scorer):
    from mats_lab.core.scorers import NONNEGATIVE_SCORERS, pixel_difference_scores

    assert scorer in NONNEGATIVE_SCORERS
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 3, 8, 16, 16, generator=g)
    video[:, :, :, :8] = -0.0  # still content written as negative zero
    if scorer == "pixel":
        scores = pixel_difference_scores(video, 2, 8)
    else:
        conv = torch.nn.Conv3d(3, 16, (2, 8, 8), (2, 8, 8))
        grid = conv(video).flatten(3).permute(0, 2, 3, 1)
        scores = tubelet_grid_scores(grid)
    assert (scores == 0).any()
    assert (scores.view(torch.int32) >= 0).all()
