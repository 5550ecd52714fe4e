"""The pre-training model: one implementation, three maskings, checkpoints that fine-tune."""

import pytest
import torch

BACKBONE = dict(
    type="MATSVisionTransformer",
    img_size=32,
    patch_size=8,
    embed_dims=48,
    depth=2,
    num_heads=4,
    num_frames=8,
)
PREPROCESSOR = dict(
    type="ActionDataPreprocessor",
    mean=[120.0, 110.0, 100.0],
    std=[60.0, 60.0, 60.0],
    format_shape="NCTHW",
)


def pretrainer(masking="mats", keep_ratio=0.5, visible_ratio=0.25, **backbone):
    from mmaction.registry import MODELS

    return MODELS.build(
        dict(
            type="MATSPretrainer",
            backbone=dict(BACKBONE, keep_ratio=keep_ratio, **backbone),
            masking=masking,
            visible_ratio=visible_ratio,
            decoder_dims=32,
            decoder_depth=1,
            decoder_heads=2,
            seed=0,
            data_preprocessor=PREPROCESSOR,
        )
    )


@pytest.mark.parametrize("masking,keep", [("mats", 0.5), ("tube", 1.0), ("random", 1.0)])
def test_finite_loss_and_gradients_reach_the_encoder(mm, masking, keep):
    model = pretrainer(masking, keep_ratio=keep)
    video = torch.randn(2, 1, 3, 8, 32, 32)
    losses = model(video, mode="loss")
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    grad = model.backbone.patch_embed.projection.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_mats_reconstructs_only_the_non_visible_candidates(mm):
    from mats_lab.models.mae import masked_autoencoder_loss

    model = pretrainer("mats", keep_ratio=0.5, visible_ratio=0.25)
    out = masked_autoencoder_loss(
        model.backbone,
        model.decoder,
        torch.randn(2, 3, 8, 32, 32),
        "mats",
        0.5,
        0.25,
        generator=torch.Generator().manual_seed(0),
    )
    assert out.visible_idx.shape == (2, 16) and out.target_idx.shape == (2, 16)
    assert out.pred.shape == out.target.shape == (2, 16, 2 * 8 * 8 * 3)


def test_tube_reconstructs_every_hidden_token(mm):
    from mats_lab.models.mae import masked_autoencoder_loss

    model = pretrainer("tube", keep_ratio=1.0, visible_ratio=0.25)
    out = masked_autoencoder_loss(
        model.backbone, model.decoder, torch.randn(1, 3, 8, 32, 32), "tube", 1.0, 0.25
    )
    assert out.visible_idx.shape == (1, 16) and out.target_idx.shape == (1, 48)


def test_centred_encoder_reconstructs_the_centred_clip(mm):
    """A ``temporal_center`` encoder never sees still pixels: its targets are the centred clip
    (still background exactly 0), not the clip as given, which it could not predict."""
    from mats_lab.core.motion import temporal_center
    from mats_lab.core.patchify import normalized_pixel_targets
    from mats_lab.models.mae import masked_autoencoder_loss

    torch.manual_seed(0)
    video = torch.randn(2, 3, 8, 32, 32)  # a cluttered still background ...
    video = video[:, :, :1].expand(-1, -1, 8, -1, -1).clone()
    video[:, :, :, 8:16, 8:16] = torch.randn(2, 3, 8, 8, 8)  # ... and one changing patch
    model = pretrainer("tube", keep_ratio=1.0, visible_ratio=0.25, temporal_center=True)
    assert model.center_targets  # follows the backbone by default
    out = masked_autoencoder_loss(
        model.backbone, model.decoder, video, "tube", 1.0, 0.25, center_targets=True
    )
    expected = normalized_pixel_targets(temporal_center(video), 2, 8)  # (B, N, P)
    picked = expected.gather(1, out.target_idx[:, :, None].expand(-1, -1, expected.shape[2]))
    torch.testing.assert_close(out.target, picked)
    changing = torch.zeros(4, 4, dtype=torch.bool)
    changing[1, 1] = True  # the token at rows 8:16, columns 8:16
    still = ~changing.flatten().repeat(4)[out.target_idx]  # (B, M), 4 tubelets
    assert still.any() and out.target[still].abs().max() == 0  # still pixels: exactly 0
    assert out.target[~still].abs().max() > 0
    # the clip as given: every still token is a cluttered patch with unit variance
    raw = masked_autoencoder_loss(
        model.backbone, model.decoder, video, "tube", 1.0, 0.25, center_targets=False
    )
    assert raw.target.pow(2).mean() > 0.9
    assert not pretrainer("tube", keep_ratio=1.0, temporal_center=False).center_targets


def test_plain_pixel_targets_without_norm_pix_loss(mm):
    """``norm_pix_loss=False``: the target tubelets are the input pixels, not normalised."""
    from mats_lab.core.patchify import patchify
    from mats_lab.models.mae import masked_autoencoder_loss

    model = pretrainer("random", keep_ratio=1.0, visible_ratio=0.25)
    video = torch.randn(2, 3, 8, 32, 32) * 3 + 1
    out = masked_autoencoder_loss(
        model.backbone, model.decoder, video, "random", 1.0, 0.25, norm_pix_loss=False
    )
    every = patchify(video, 2, 8).flatten(2)  # (B, N, P)
    picked = every.gather(1, out.target_idx[:, :, None].expand(-1, -1, every.shape[2]))
    torch.testing.assert_close(out.target, picked)
    assert out.target.pow(2).mean() > 5  # not normalised to unit variance


def test_loss_falls_when_training_on_one_clip(mm):
    model = pretrainer("mats")
    video = torch.rand(1, 1, 3, 8, 32, 32) * 255
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        data = model.data_preprocessor({"inputs": [video[0]], "data_samples": None}, True)
        out = model(data["inputs"], mode="loss")
        loss = out["loss"]
        first = first if first is not None else out
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * first["loss"].item()
    # the diagnostic follows: what the decoder learned is a share of the predict-zeros MSE
    assert out["explained"].item() > first["explained"].item() + 0.1
    assert out["explained"].item() == pytest.approx(
        1 - loss.item() / out["zero_mse"].item(), abs=1e-6
    )


def test_diagnostics_are_zero_for_a_decoder_that_predicts_zeros_and_are_not_optimised(mm):
    model = pretrainer("tube", keep_ratio=1.0)
    torch.nn.init.zeros_(model.decoder.head.weight)
    torch.nn.init.zeros_(model.decoder.head.bias)
    losses = model(torch.randn(2, 1, 3, 8, 32, 32), mode="loss")
    assert set(losses) == {"loss", "zero_mse", "explained"}
    assert losses["zero_mse"].item() == pytest.approx(losses["loss"].item(), rel=1e-6)
    assert losses["explained"].item() == pytest.approx(0.0, abs=1e-6)
    assert not losses["zero_mse"].requires_grad and not losses["explained"].requires_grad
    total, log_vars = model.parse_losses(losses)  # what MMEngine's train step optimises
    assert total.item() == pytest.approx(losses["loss"].item())
    assert set(log_vars) == {"loss", "zero_mse", "explained"}


def test_diagnostics_of_targets_that_are_all_zero(mm):
    from mats_lab.models.mae import reconstruction_diagnostics

    out = reconstruction_diagnostics(torch.tensor(0.0), torch.zeros(2, 3, 4))
    assert out["zero_mse"].item() == 0.0 and out["explained"].item() == 0.0
    out = reconstruction_diagnostics(torch.tensor(0.5), torch.ones(2, 3, 4))
    assert out["explained"].item() == pytest.approx(0.5)


def test_pretrain_checkpoint_loads_into_recognizer_backbone(mm, tmp_path):
    from mmaction.registry import MODELS
    from mmengine.runner import load_checkpoint

    model = pretrainer("mats")
    torch.save({"state_dict": model.state_dict(), "meta": {}}, tmp_path / "pre.pth")
    recognizer = MODELS.build(
        dict(
            type="Recognizer3D",
            backbone=dict(BACKBONE, keep_ratio=0.5),
            cls_head=dict(type="TimeSformerHead", num_classes=3, in_channels=48),
            data_preprocessor=PREPROCESSOR,
        )
    )
    load_checkpoint(recognizer, str(tmp_path / "pre.pth"), strict=False)
    for name, value in recognizer.backbone.state_dict().items():
        if name.startswith("fc_norm"):
            continue  # fresh in fine-tuning, as in VideoMAE
        assert torch.equal(value, model.backbone.state_dict()[name]), name
    # and through init_cfg with a prefix, the other supported path
    backbone = MODELS.build(
        dict(
            BACKBONE,
            init_cfg=dict(
                type="Pretrained", checkpoint=str(tmp_path / "pre.pth"), prefix="backbone."
            ),
        )
    )
    backbone.init_weights()
    assert torch.equal(backbone.blocks[1].attn.qkv.weight, model.backbone.blocks[1].attn.qkv.weight)


def test_bad_masking_and_unknown_key_raise(mm):
    from mmaction.registry import MODELS

    with pytest.raises(ValueError, match="masking"):
        pretrainer("blocks")
    with pytest.raises(TypeError, match="visible_ratoi"):
        MODELS.build(
            dict(
                type="MATSPretrainer",
                backbone=BACKBONE,
                visible_ratoi=0.1,
                data_preprocessor=PREPROCESSOR,
            )
        )


def test_pretraining_with_frame_selection_uses_the_selected_frames(mm):
    model = pretrainer("mats", keep_ratio=0.5, candidate_ratio=2.0)
    video = torch.randn(2, 1, 3, 16, 32, 32)  # 8 candidate tubelets for a 4-tubelet model
    loss = model(video, mode="loss")["loss"]
    assert torch.isfinite(loss)
