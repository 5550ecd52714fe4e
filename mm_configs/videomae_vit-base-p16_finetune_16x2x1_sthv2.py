# Full-token fine-tuning of a pre-trained ViT-B/16 on Something-Something v2: 16 frames drawn
# uniformly over the video (TSN-style, as VideoMAE does for SSv2), no horizontal flip (labels
# such as "left to right" depend on direction), test 2 clips x 3 crops, 174 classes.
_base_ = ['videomae_vit-base-p16_finetune_16x4x1_kinetics-400.py']

data_root = 'data/sthv2/videos'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'
num_classes = 174
decode_backend = 'auto'

model = dict(
    cls_head=dict(num_classes=num_classes),
    data_preprocessor=dict(
        blending=dict(
            type='RandomBatchAugment',
            augments=[
                dict(type='MixupBlending', alpha=0.8, num_classes=num_classes),
                dict(type='CutmixBlending', alpha=1.0, num_classes=num_classes),
            ])))

# VideoMAE's SSv2 ViT-B fine-tuning (scripts/ssv2/..._epoch_800/finetune.sh): lr 5e-4 at a
# total batch of 256 and 50 epochs (K400's is 1e-3 and 100); 5 warm-up epochs, min lr 1e-6.
max_epochs = 50
warmup_epochs = 5
base_lr = 5e-4
min_lr = 1e-6
warmup_lr = 1e-6
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=min_lr / base_lr, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='UniformSample', clip_len=16, num_clips=1),
    dict(type='CheckedVideoDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='VideoRandAugment', magnitude=7, num_ops=4),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand',
         fill_color=(123.675, 116.28, 103.53), fill_std=(58.395, 57.12, 57.375)),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='UniformSample', clip_len=16, num_clips=1, test_mode=True),
    dict(type='CheckedVideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='UniformSample', clip_len=16, num_clips=2, test_mode=True),
    dict(type='CheckedVideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(dataset=dict(
    ann_file=ann_file_train, data_prefix=dict(video=data_root), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    ann_file=ann_file_val, data_prefix=dict(video=data_root), pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(
    ann_file=ann_file_val, data_prefix=dict(video=data_root), pipeline=test_pipeline))
