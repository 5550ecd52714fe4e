"""Official VideoMAE / EVEREST checkpoints convert into mats-lab models."""

import torch
from typer.testing import CliRunner

from mats_lab.models.convert import convert_official_state_dict, unwrap_state_dict

TINY = dict(
    type="MATSVisionTransformer",
    img_size=32,
    patch_size=8,
    embed_dims=48,
    depth=2,
    num_heads=4,
    num_frames=8,
)


def official_keys(sd: dict, prefix: str = "") -> dict:
    """Turn a mats-lab backbone state dict into the official (timm-style) names."""
    out = {}
    for k, v in sd.items():
        k = k.replace("patch_embed.projection", "patch_embed.proj")
        k = k.replace("mlp.layers.0.0", "mlp.fc1").replace("mlp.layers.1", "mlp.fc2")
        out[prefix + k] = v
    return out


def test_finetuned_checkpoint_converts_and_loads_strictly(mm, tmp_path):
    from mmaction.registry import MODELS

    from mats_lab.cli.main import app

    src = MODELS.build(TINY)
    official = official_keys(src.state_dict())
    official["head.weight"] = torch.randn(5, 48)
    official["head.bias"] = torch.randn(5)
    official["pos_embed"] = torch.zeros(1, 64, 48)
    torch.save({"module": official}, tmp_path / "official.pth")
    result = CliRunner().invoke(
        app, ["convert-ckpt", str(tmp_path / "official.pth"), str(tmp_path / "out.pth")]
    )
    assert result.exit_code == 0, result.output
    converted = torch.load(tmp_path / "out.pth", weights_only=True)["state_dict"]
    recognizer = MODELS.build(
        dict(
            type="Recognizer3D",
            backbone=TINY,
            cls_head=dict(type="TimeSformerHead", num_classes=5, in_channels=48),
            data_preprocessor=dict(type="ActionDataPreprocessor", format_shape="NCTHW"),
        )
    )
    recognizer.load_state_dict(converted, strict=True)
    assert torch.equal(recognizer.cls_head.fc_cls.weight, official["head.weight"])


def test_pretraining_checkpoint_converts_for_both_targets(mm):
    from mmaction.registry import MODELS

    pre = MODELS.build(
        dict(
            type="MATSPretrainer",
            backbone=TINY,
            decoder_dims=32,
            decoder_depth=1,
            decoder_heads=2,
            data_preprocessor=dict(type="ActionDataPreprocessor", format_shape="NCTHW"),
        )
    )
    sd = pre.state_dict()
    official = official_keys(
        {k[len("backbone.") :]: v for k, v in sd.items() if k.startswith("backbone.")}, "encoder."
    )
    for k, v in sd.items():
        if k.startswith("decoder."):
            name = k[len("decoder.") :]
            if name in ("encoder_to_decoder.weight", "mask_token"):
                official[name] = v
            else:
                official[official_keys({name: v}, "decoder.").popitem()[0]] = v
    as_pretrainer = convert_official_state_dict(
        unwrap_state_dict({"model": official}), "pretrainer"
    )
    assert set(as_pretrainer) == set(sd)
    pre.load_state_dict(as_pretrainer, strict=True)
    as_recognizer = convert_official_state_dict(official, "recognizer")
    assert all(k.startswith("backbone.") for k in as_recognizer)


def test_unknown_keys_and_bad_target_are_refused(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="no mats-lab counterpart"):
        convert_official_state_dict({"blocks.0.norm1.weight": torch.ones(1), "foo": torch.ones(1)})
    with pytest.raises(ValueError, match="target"):
        convert_official_state_dict({}, "detector")
