# MATS fine-tuning of the tiny ViT on the embedded motion dataset with the codec's motion as
# the token scorer: the top 60 % of tokens by H.264 motion-vector magnitude (averaged over each
# token's tubelet and patch) instead of by embedding distance. The pipelines append the motion
# map as a 4th channel right after decoding (`CodecMotionVectors`), so the clip reaching the
# model is (B, 3 + 1, T, H, W); the data preprocessor leaves that channel as it is (mean 0,
# std 1). MMEngine resolves `train_pipeline` at parse time, so the expanded dataloader
# pipelines are overridden here, not the variables.
_base_ = ['mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py']

decode_backend = 'pyav'
# Label-mapping flips as in the base dataset config (mats_lab.data.synth.FLIP_LABEL_MAPS).
motion_flips = [
    dict(type='MotionFlip', axis=axis, label_map='motion-synth')
    for axis in ('horizontal', 'vertical', 'temporal', 'transpose')
]

model = dict(
    backbone=dict(scorer='motion_vectors'),
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53, 0.0],
        std=[58.395, 57.12, 57.375, 1.0]))

train_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=1),
    dict(type='CheckedVideoDecode'),
    dict(type='CodecMotionVectors'),
    *motion_flips,
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=1, test_mode=True),
    dict(type='CheckedVideoDecode'),
    dict(type='CodecMotionVectors'),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=val_pipeline))
