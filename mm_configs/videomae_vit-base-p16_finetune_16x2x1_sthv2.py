# Full-token fine-tuning of a pre-trained ViT-B/16 on Something-Something v2: 16 frames drawn
# uniformly over the video (TSN-style, as VideoMAE does for SSv2), no horizontal flip (labels
# such as "left to right" depend on direction), test 2 clips x 3 crops, 174 classes.
_base_ = ['videomae_vit-base-p16_finetune_16x4x1_kinetics-400.py']

data_root = 'data/sthv2/videos'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'
num_classes = 174
decode_backend = 'auto'

model = dict(cls_head=dict(num_classes=num_classes))
train_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='UniformSample', clip_len=16, num_clips=1),
    dict(type='CheckedVideoDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='VideoRandAugment', magnitude=7, num_ops=4),
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
