# MATS pre-training of the tiny ViT on the smooth embedded dataset's unlabelled clips
# (`smooth-unlabelled`, 2000 clips of seed 1, none of them in the labelled set): 8 frames of
# 32x32, patch 8, tubelet 2 = 4 x 16 = 64 tokens; the top 50 % by motion are candidates and
# 25 % of all tokens are visible. Clips are centred in time (the fine-tuning's input), and the
# targets with them. 2000 steps of 32 clips (32 epochs).
_base_ = [
    '_base_/default_runtime.py',
    '_base_/datasets/motion-synth-smooth_8x1x1.py',
]

unlabelled_root = '{{ fileDirname }}/../data/motion_synth_smooth_unlabelled'
train_dataloader = dict(
    dataset=dict(
        ann_file=unlabelled_root + '/train_list_videos.txt',
        data_prefix=dict(video=unlabelled_root),
        synth_root=unlabelled_root,
        synth_seed=1,
        synth_size='smooth-unlabelled'))

model = dict(
    type='MATSPretrainer',
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
        keep_ratio=0.5,
        temporal_center=True),
    masking='mats',
    visible_ratio=0.25,
    decoder_dims=64,
    decoder_depth=1,
    decoder_heads=2,
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

max_epochs = 32
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
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 2, eta_min_ratio=1e-5 / 1.5e-3,
         by_epoch=True, begin=2, end=max_epochs, convert_to_iter_based=True),
]
# lr 1.5e-3 is for one process at batch 32; MMEngine scales it by total batch / 32.
auto_scale_lr = dict(enable=True, base_batch_size=32)
default_hooks = dict(logger=dict(interval=10))
