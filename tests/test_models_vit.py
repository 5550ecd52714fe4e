"""The MATS backbone against MMAction2's VisionTransformer, and its selection switches."""

import pytest
import torch

TINY = dict(img_size=32, patch_size=8, embed_dims=48, depth=2, num_heads=4, num_frames=8)


def build(mm, type_, **kw):
    from mmaction.registry import MODELS

    return MODELS.build(dict(type=type_, **TINY, **kw))


def test_keep_ratio_one_equals_mmaction_vision_transformer(mm):
    torch.manual_seed(0)
    ref = build(mm, "VisionTransformer").eval()
    ours = build(mm, "MATSVisionTransformer", keep_ratio=1.0).eval()
    result = ours.load_state_dict(ref.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    ours.train()
    ref.train()
    with torch.no_grad():  # no dropout configured: train mode computes the same
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_loads_mmaction_recognizer_checkpoint_directly(mm, tmp_path):
    from mmaction.registry import MODELS
    from mmengine.runner import load_checkpoint

    def recognizer(backbone_type, **kw):
        return MODELS.build(
            dict(
                type="Recognizer3D",
                backbone=dict(type=backbone_type, **TINY, **kw),
                cls_head=dict(type="TimeSformerHead", num_classes=5, in_channels=48),
                data_preprocessor=dict(type="ActionDataPreprocessor", format_shape="NCTHW"),
            )
        )

    torch.manual_seed(1)
    ref = recognizer("VisionTransformer").eval()
    torch.save({"state_dict": ref.state_dict(), "meta": {}}, tmp_path / "videomae.pth")
    ours = recognizer("MATSVisionTransformer").eval()
    load_checkpoint(ours, str(tmp_path / "videomae.pth"), strict=True)
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            ours.cls_head(ours.backbone(x)), ref.cls_head(ref.backbone(x)), atol=1e-5, rtol=1e-5
        )


def test_token_selection_changes_compute_not_shape(mm):
    model = build(mm, "MATSVisionTransformer", keep_ratio=0.5).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    tokens, keep_idx, _ = model.forward_tokens(x)
    assert keep_idx.shape == (2, 32) and tokens.shape == (2, 32, 48)
    assert model(x).shape == (2, 48)


def test_test_time_dropping_switch(mm):
    model = build(mm, "MATSVisionTransformer", keep_ratio=0.5, drop_at_test=False).eval()
    _, keep_idx, _ = model.forward_tokens(torch.randn(1, 3, 8, 32, 32))
    assert keep_idx is None
    model.train()
    _, keep_idx, _ = model.forward_tokens(torch.randn(1, 3, 8, 32, 32))
    assert keep_idx.shape == (1, 32)


def test_selected_tokens_are_the_moving_ones(mm):
    model = build(mm, "MATSVisionTransformer", keep_ratio=0.1).eval()  # 6 of 64 tokens
    x = torch.zeros(1, 3, 8, 32, 32)
    for f in range(8):  # a bright square sliding right along the top-left quarter
        x[0, :, f, 0:8, f * 2 : f * 2 + 8] = 1.0
    _, keep_idx, _ = model.forward_tokens(x)
    cols = (keep_idx[0] % 16) % 4
    rows = (keep_idx[0] % 16) // 4
    assert torch.all(rows == 0)  # every kept token is in the square's row of patches
    assert torch.all(cols <= 2)


def test_frame_selection_keeps_the_moving_tubelets(mm):
    model = build(mm, "MATSVisionTransformer", keep_ratio=0.3, candidate_ratio=2.0, seed=0)
    model.eval()
    texture = torch.rand(3, 32, 64, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(1, 3, 16, 32, 32)  # 8 candidate tubelets, the model takes 4
    for f in range(16):  # still first half, the whole scene pans in the second half
        shift = max(0, f - 7) * 4
        x[0, :, f] = texture[:, :, shift : shift + 32]
    _, _, tubelet_idx = model.forward_tokens(x)
    assert tubelet_idx.tolist() == [[4, 5, 6, 7]]
    model.train()
    out = model(x)
    assert out.shape == (1, 48)


def test_wrong_clip_length_without_frame_selection_raises(mm):
    model = build(mm, "MATSVisionTransformer")
    with pytest.raises(ValueError, match="candidate_ratio"):
        model(torch.randn(1, 3, 16, 32, 32))


def test_unknown_constructor_key_raises(mm):
    from mmaction.registry import MODELS

    with pytest.raises(TypeError, match="keep_ratoi"):
        MODELS.build(dict(type="MATSVisionTransformer", keep_ratoi=0.5))


@pytest.mark.parametrize("ratio", [0.0, 1.2])
def test_out_of_range_keep_ratio_raises_at_build(mm, ratio):
    with pytest.raises(ValueError, match="keep_ratio"):
        build(mm, "MATSVisionTransformer", keep_ratio=ratio)


def test_gathering_before_the_position_embedding_computes_the_same(mm):
    """positioned_tokens gathers the kept rows first; adding the table to all N tokens and
    gathering afterwards (what the encoder used to do) gives the same tokens and output."""
    from mats_lab.core.selection import select_topk

    model = build(mm, "MATSVisionTransformer", keep_ratio=0.5).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        prep = model.prepare(x, with_scores=True)
        keep = select_topk(prep.scores, 0.5)  # (B, K)
        full = prep.embeddings + model.position_table(prep.grid)  # (B, N, D)
        old = full.gather(1, keep[:, :, None].expand(-1, -1, full.shape[-1]))
        torch.testing.assert_close(model.positioned_tokens(prep, keep), old, atol=0, rtol=0)
        tokens, keep_idx, _ = model.forward_tokens(x)
        gathered = full.gather(1, keep_idx[:, :, None].expand(-1, -1, full.shape[-1]))
        torch.testing.assert_close(tokens, model.encode(gathered))
