"""bf16 autocast on the CPU: the MATS pre-training and fine-tuning steps run through the
optimizer wrapper the ``precision`` knob sets, with finite losses close to fp32."""

import copy
import warnings

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


def build(kind):
    from mmaction.registry import MODELS

    torch.manual_seed(0)
    if kind == "pretrain":
        cfg = dict(
            type="MATSPretrainer",
            backbone=dict(BACKBONE, keep_ratio=0.5),
            masking="mats",
            visible_ratio=0.25,
            decoder_dims=32,
            decoder_depth=1,
            decoder_heads=2,
            seed=0,
            data_preprocessor=PREPROCESSOR,
        )
    else:
        cfg = dict(
            type="Recognizer3D",
            backbone=dict(BACKBONE, keep_ratio=0.6),
            cls_head=dict(type="TimeSformerHead", num_classes=5, in_channels=48),
            data_preprocessor=PREPROCESSOR,
        )
    return MODELS.build(cfg)


def batch(kind):
    from mmaction.structures import ActionDataSample

    gen = torch.Generator().manual_seed(1)
    inputs = [torch.randint(0, 256, (1, 3, 8, 32, 32), generator=gen).float() for _ in range(2)]
    samples = [ActionDataSample().set_gt_label(torch.tensor(i % 5)) for i in range(2)]
    return {"inputs": inputs, "data_samples": samples}


def wrapper_for(model, precision):
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper

    from mats_lab.trial.knobs import apply_knobs

    cfg = Config(
        dict(optim_wrapper=dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3)))
    )
    apply_knobs(cfg, {"precision": precision})
    return build_optim_wrapper(model, cfg.optim_wrapper)


def loss_of(model, wrapper, kind):
    data = model.data_preprocessor(batch(kind), True)
    with wrapper.optim_context(model):
        losses = model(**data, mode="loss")
    return sum(v for k, v in losses.items() if "loss" in k)


@pytest.mark.parametrize("kind", ["pretrain", "finetune"])
def test_bf16_step_on_cpu_is_finite_and_close_to_fp32(mm, kind):
    model = build(kind)
    bf16_model = copy.deepcopy(model)
    wrapper32 = wrapper_for(model, "fp32")
    wrapper16 = wrapper_for(bf16_model, "bf16")
    assert type(wrapper16).__name__ == "AutocastOptimWrapper"
    loss32 = loss_of(model, wrapper32, kind)
    loss16 = loss_of(bf16_model, wrapper16, kind)
    assert torch.isfinite(loss16)
    assert loss16.item() == pytest.approx(loss32.item(), rel=0.03)

    # A whole training step through the wrapper: the weights move and stay finite.
    before = [p.detach().clone() for p in bf16_model.parameters()]
    log = bf16_model.train_step(batch(kind), wrapper16)
    assert all(torch.isfinite(v) for v in log.values())
    after = list(bf16_model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    assert all(torch.isfinite(p).all() for p in after)


def test_bf16_autocast_really_runs_in_bf16(mm):
    model = build("finetune")
    wrapper = wrapper_for(model, "bf16")
    seen = []
    hook = model.backbone.blocks[0].attn.register_forward_hook(
        lambda mod, args, out: seen.append(out.dtype)
    )
    loss_of(model, wrapper, "finetune")
    hook.remove()
    assert seen == [torch.bfloat16]


def test_fp16_on_cpu_falls_back_to_fp32_with_a_warning(mm):
    model = build("finetune")
    reference = copy.deepcopy(model)
    wrapper = wrapper_for(model, "fp16")
    with pytest.warns(UserWarning, match="fp16 has no CPU autocast"):
        loss16 = loss_of(model, wrapper, "finetune")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per wrapper, not every step
        loss_of(model, wrapper, "finetune")
    loss32 = loss_of(reference, wrapper_for(reference, "fp32"), "finetune")
    assert loss16.item() == loss32.item()


def test_precision_knob_sets_and_unsets_the_wrapper(mm):
    from mmengine.config import Config

    from mats_lab.trial.knobs import apply_knobs

    cfg = Config(
        dict(
            optim_wrapper=dict(
                type="AmpOptimWrapper", dtype="float16", loss_scale="dynamic", optimizer={}
            )
        )
    )
    apply_knobs(cfg, {"precision": "bf16"})
    assert cfg.optim_wrapper.type == "AutocastOptimWrapper"
    assert cfg.optim_wrapper.dtype == "bfloat16" and "loss_scale" not in cfg.optim_wrapper
    apply_knobs(cfg, {"precision": "fp32"})
    assert cfg.optim_wrapper.type == "OptimWrapper" and "dtype" not in cfg.optim_wrapper


def test_autocast_wrapper_state_round_trips(mm):
    model = build("finetune")
    wrapper = wrapper_for(model, "bf16")
    model.train_step(batch("finetune"), wrapper)
    state = wrapper.state_dict()
    fresh = wrapper_for(build("finetune"), "bf16")
    fresh.load_state_dict(state)
    assert (
        fresh.optimizer.state_dict()["state"].keys()
        == wrapper.optimizer.state_dict()["state"].keys()
    )


def test_unknown_dtype_is_refused(mm):
    from mats_lab.mm.amp import AutocastOptimWrapper

    with pytest.raises(ValueError, match="dtype must be one of"):
        AutocastOptimWrapper(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), "fp8")
