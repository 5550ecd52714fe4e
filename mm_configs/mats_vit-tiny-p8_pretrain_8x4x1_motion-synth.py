# MATS pre-training of a tiny ViT (width 128, depth 4, patch 8) on the embedded motion dataset:
# 4 tubelets x 64 = 256 tokens; the top 30 % by motion are candidates, 10 % of all tokens are
# visible. Fast enough for a laptop CPU.
_base_ = [
    '_base_/default_runtime.py',
    '_base_/datasets/motion-synth_8x4x1.py',
]

model = dict(
    type='MATSPretrainer',
    backbone=dict(
        type='MATSVisionTransformer',
        img_size=64,
        patch_size=8,
        embed_dims=128,
        depth=4,
        num_heads=4,
        mlp_ratio=4,
        num_frames=8,
        tubelet_size=2,
        keep_ratio=0.3),
    masking='mats',
    visible_ratio=0.1,
    decoder_dims=64,
    decoder_depth=1,
    decoder_heads=2,
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

max_epochs = 10
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs + 1)
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys=dict(mask_token=dict(decay_mult=0.0))))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min_ratio=1e-5 / 1.5e-3,
         by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True),
]
# lr 1.5e-3 is for one process at batch 16; MMEngine scales it by total batch / 16.
auto_scale_lr = dict(enable=True, base_batch_size=16)
default_hooks = dict(logger=dict(interval=5))
