# MATS pre-training of ViT-B/16 on Kinetics-400, 16x4x1 (METHOD §2): the top 30 % of tokens by
# motion are candidates, 10 % of all tokens are visible, the other candidates are the targets;
# decoder 4 blocks x 384. 19.8 G MACs per clip (`mats-lab flops` on this file).
data_root = 'data/kinetics400/videos_train'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
decode_backend = 'auto'  # the fastest backend exact for every file (mats_lab.data.decode)

_base_ = [
    '_base_/default_runtime.py',
    '_base_/schedules/pretrain_adamw.py',
]

model = dict(
    type='MATSPretrainer',
    backbone=dict(
        type='MATSVisionTransformer',
        img_size=224,
        patch_size=16,
        embed_dims=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4,
        qkv_bias=True,
        num_frames=16,
        tubelet_size=2,
        keep_ratio=0.3),
    masking='mats',
    visible_ratio=0.1,
    decoder_dims=384,
    decoder_depth=4,
    decoder_heads=6,
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

# Training skips (logs, replaces, counts) a video that fails to decode; validation and test
# raise naming the file. `mats-lab data check` finds such files before a run.
dataset_type = 'RobustVideoDataset'
train_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=1),
    dict(type='CheckedVideoDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='MultiScaleCrop', input_size=224, scales=(1, 0.875, 0.75, 0.66),
         random_crop=False, max_wh_scale_gap=1),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    # No flip: the official pre-training augments with the multi-scale crop only.
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=24,  # per device (EVEREST: 24 x 8 GPUs); the LR follows (auto_scale_lr)
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='EpochTaggedSampler', shuffle=True),  # exact resume: mats_lab.mm.samplers
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline,
        skip_bad_samples=True))
custom_hooks = [dict(type='BadSampleReportHook'), dict(type='RngStateHook')]
# Fixed clip shapes: let cuDNN pick its fastest kernels (the stage runner also turns on TF32).
env_cfg = dict(cudnn_benchmark=True)
val_dataloader = None
val_evaluator = None
test_dataloader = None
test_evaluator = None
