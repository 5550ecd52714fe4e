# Few-label fine-tuning of the tiny ViT on the smooth embedded dataset: 20 labelled clips
# (2 a class), 8 frames of 32x32, patch 8, tubelet 2, centred in time; from scratch unless
# `load_from` names a pre-training checkpoint (its backbone.* keys load directly).
# 200 epochs of one batch of all 20 clips = 200 steps; validation on 500 clips.
_base_ = [
    '_base_/default_runtime.py',
    '_base_/datasets/motion-synth-smooth_8x1x1.py',
]

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='MATSVisionTransformer',
        img_size=32,
        patch_size=8,
        embed_dims=128,
        depth=4,
        num_heads=4,
        mlp_ratio=4,
        num_frames=8,
        tubelet_size=2,
        drop_path_rate=0.0,
        keep_ratio=1.0,
        drop_at_test=True,
        use_mean_pooling=True,
        temporal_center=True),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes=10,
        in_channels=128,
        init_std=0.02,
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

train_dataloader = dict(batch_size=20)
max_epochs = 200
warmup_epochs = 20
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1, val_interval=50)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0.0, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
# lr 1e-3 is for batch 32; MMEngine scales it by total batch / 32 (6.25e-4 at batch 20).
auto_scale_lr = dict(enable=True, base_batch_size=32)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(save_best='auto'))
