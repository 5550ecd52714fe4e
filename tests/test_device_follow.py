"""What the project makes follows the model's device and dtype.

The models are moved to the ``meta`` device, which has no data: any tensor the project makes
on the CPU next to them (a clip, a mask, a position table, a generator) then fails on this
CPU-only machine exactly as it would on a GPU.
"""

import pytest
import torch

PREPROCESSOR = dict(
    type="ActionDataPreprocessor",
    mean=[120.0, 110.0, 100.0],
    std=[60.0, 60.0, 60.0],
    format_shape="NCTHW",
)
BACKBONE = dict(
    type="MATSVisionTransformer",
    img_size=32,
    patch_size=8,
    embed_dims=48,
    depth=2,
    num_heads=4,
    num_frames=8,
)


def pretrainer(masking, seed=0):
    from mmaction.registry import MODELS

    return MODELS.build(
        dict(
            type="MATSPretrainer",
            backbone=dict(BACKBONE, keep_ratio=0.5),
            masking=masking,
            visible_ratio=0.25,
            decoder_dims=32,
            decoder_depth=1,
            decoder_heads=2,
            seed=seed,
            data_preprocessor=PREPROCESSOR,
        )
    )


def recognizer(**backbone):
    from mmaction.registry import MODELS

    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type="Recognizer3D",
            backbone=dict(BACKBONE, **backbone),
            cls_head=dict(type="TimeSformerHead", num_classes=5, in_channels=48),
            data_preprocessor=PREPROCESSOR,
        )
    )


def test_a_cpu_tensor_next_to_a_meta_model_fails(mm):
    """The premise of this file: a device mismatch is an error on CPU too."""
    model = recognizer(keep_ratio=0.5).to("meta")
    with pytest.raises(RuntimeError, match="device"):
        model.backbone(torch.randn(1, 3, 8, 32, 32))


@pytest.mark.parametrize("masking", ["mats", "tube", "random"])
def test_pretraining_forward_on_meta(mm, masking):
    model = pretrainer(masking).to("meta")
    loss = model(torch.empty(2, 3, 8, 32, 32, device="meta"), mode="loss")["loss"]
    assert loss.device.type == "meta" and loss.shape == ()


@pytest.mark.parametrize(
    "backbone",
    [
        dict(keep_ratio=0.5),
        dict(keep_ratio=0.5, scorer="pixel"),
        dict(keep_ratio=1.0),
        dict(keep_ratio=0.5, candidate_ratio=1.5, seed=0),  # adaptive frame selection
    ],
    ids=["embedding", "pixel", "all-tokens", "frame-selection"],
)
def test_fine_tuning_forward_on_meta(mm, backbone):
    model = recognizer(**backbone).to("meta").train()
    frames = 12 if backbone.get("candidate_ratio") else 8
    feats = model.backbone(torch.empty(2, 3, frames, 32, 32, device="meta"))
    logits = model.cls_head(feats)
    assert logits.device.type == "meta" and logits.shape == (2, 5)


@pytest.mark.parametrize("kind", ["recognizer", "pretrainer"])
def test_macs_counted_on_meta_equal_the_cpu_count(mm, kind):
    from mats_lab.trial.flops import model_cost

    def build():
        torch.manual_seed(0)
        return recognizer(keep_ratio=0.5) if kind == "recognizer" else pretrainer("mats")

    on_cpu = model_cost(build())
    on_meta = model_cost(build().to("meta"))
    assert on_meta.train_gmacs == pytest.approx(on_cpu.train_gmacs)
    assert on_meta.test_gmacs == pytest.approx(on_cpu.test_gmacs)
    assert on_cpu.train_gmacs > 0


def test_macs_of_a_bf16_model(mm):
    """A model cast to bf16 is counted with a bf16 clip (a float32 clip would fail)."""
    from mats_lab.trial.flops import model_cost

    cost = model_cost(recognizer(keep_ratio=0.5).to(torch.bfloat16))
    assert cost.train_gmacs == pytest.approx(model_cost(recognizer(keep_ratio=0.5)).train_gmacs)


def test_macs_count_leaves_the_global_random_state_alone(mm):
    from mats_lab.trial.flops import model_cost

    model = recognizer(keep_ratio=0.5)
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    model_cost(model)
    assert torch.equal(torch.rand(4), expected)
