"""Temporal centring (``temporal_center``): still content reaches the encoder as exactly 0,
the motion scores and the kept tokens do not change, a motion channel is left alone."""

import pytest
import torch

from mats_lab.core.motion import temporal_center

TINY = dict(img_size=32, patch_size=8, embed_dims=48, depth=2, num_heads=4, num_frames=8)


def moving_square(background: torch.Tensor) -> torch.Tensor:
    """``(1, 3, 8, 32, 32)``: ``background`` ``(3, 32, 32)`` with a bright square sliding right."""
    x = background[None, :, None].repeat(1, 1, 8, 1, 1)
    for f in range(8):
        x[0, :, f, 0:8, f * 2 : f * 2 + 8] = 3.0
    return x


def test_core_removes_the_temporal_mean_and_keeps_differences():
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 3, 6, 5, 4, generator=g)
    out = temporal_center(video)
    assert out.shape == video.shape
    torch.testing.assert_close(out.mean(2), torch.zeros(2, 3, 5, 4), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.diff(dim=2), video.diff(dim=2), atol=1e-6, rtol=0)
    still = torch.randn(1, 3, 1, 5, 4, generator=g).expand(1, 3, 6, 5, 4)
    assert torch.equal(temporal_center(still), torch.zeros(1, 3, 6, 5, 4))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        temporal_center(video[0])


def build(mm, **kw):
    from mmaction.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(dict(type="MATSVisionTransformer", **TINY, **kw)).eval()


def test_scores_and_kept_tokens_are_those_of_the_plain_model(mm):
    plain = build(mm, keep_ratio=0.25)
    centred = build(mm, keep_ratio=0.25, temporal_center=True)
    centred.load_state_dict(plain.state_dict())
    x = moving_square(torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1)))
    a, b = plain.prepare(x, with_scores=True), centred.prepare(x, with_scores=True)
    torch.testing.assert_close(b.scores, a.scores, atol=1e-4, rtol=1e-4)
    assert torch.equal(a.video, b.video)  # the frames as given: pixel targets come from them
    assert not torch.allclose(a.embeddings, b.embeddings)
    _, keep_a, _ = plain.forward_tokens(x)
    _, keep_b, _ = centred.forward_tokens(x)
    assert torch.equal(keep_a, keep_b)


def test_the_background_no_longer_reaches_the_encoder(mm):
    model = build(mm, keep_ratio=1.0, temporal_center=True)
    g = torch.Generator().manual_seed(2)
    one, other = torch.rand(3, 32, 32, generator=g), torch.rand(3, 32, 32, generator=g)
    other[:, :8] = one[:, :8]  # the same under the square's path, different everywhere else
    with torch.no_grad():
        torch.testing.assert_close(model(moving_square(one)), model(moving_square(other)))
        # a clip with no motion at all is the zero clip, whatever its content
        still = one[None, :, None].expand(1, 3, 8, 32, 32)
        torch.testing.assert_close(model(still), model(torch.zeros(1, 3, 8, 32, 32)))
    plain = build(mm, keep_ratio=1.0)
    with torch.no_grad():
        assert not torch.allclose(plain(moving_square(one)), plain(moving_square(other)))


def test_motion_channel_is_not_centred(mm):
    model = build(mm, keep_ratio=0.25, scorer="motion_vectors", temporal_center=True)
    colours = torch.rand(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(3))
    motion = torch.zeros(1, 1, 8, 32, 32)
    motion[..., :8, :8] = 5.0  # constant over time: centring would erase it
    prep = model.prepare(torch.cat([colours, motion], dim=1), with_scores=True)
    scores = prep.scores.reshape(1, 4, 16)  # (B, t, L)
    assert (scores[:, :, 0] > 0).all() and (scores[:, :, 1:] == 0).all()
    torch.testing.assert_close(prep.embeddings, model.embed(temporal_center(colours)).flatten(1, 2))
