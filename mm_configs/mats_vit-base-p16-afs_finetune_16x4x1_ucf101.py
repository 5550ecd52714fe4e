# Adaptive frame selection (METHOD §4) for ViT-B/16 on UCF101: the loader spreads
# 2 x 16 = 32 candidate frames over the whole video, the backbone keeps the 8 tubelets with most
# top-motion tokens (weighted draw in training, top counts at test); then MATS keep 0.6.
_base_ = ['mats_vit-base-p16_finetune_16x4x1_ucf101.py']

decode_backend = 'auto'
model = dict(backbone=dict(candidate_ratio=2.0))
train_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='CandidateSampleFrames', clip_len=16, frame_interval=4, candidate_ratio=2.0),
    dict(type='CheckedVideoDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='VideoRandAugment', magnitude=7, num_ops=4),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand',
         fill_color=(123.675, 116.28, 103.53), fill_std=(58.395, 57.12, 57.375)),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='CandidateSampleFrames', clip_len=16, frame_interval=4, candidate_ratio=2.0,
         test_mode=True),
    dict(type='CheckedVideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [  # 5 clips x 3 crops
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='CandidateSampleFrames', clip_len=16, frame_interval=4, num_clips=5,
         candidate_ratio=2.0, test_mode=True),
    dict(type='CheckedVideoDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
# MMEngine resolved the base's pipeline variables at parse time: restate the expanded keys.
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
