# The cheap frame-selection ablation: 12 candidate frames spread over the video, the data
# pipeline keeps the 4 tubelets with most pixel change (weighted draw in training, top
# scores at test); the model sees a normal 8-frame clip.
_base_ = ['mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py']

decode_backend = 'pyav'
# Label-mapping flips as in the base dataset config (mats_lab.data.synth.FLIP_LABEL_MAPS).
motion_flips = [
    dict(type='MotionFlip', axis=axis, label_map='motion-synth')
    for axis in ('horizontal', 'vertical', 'temporal', 'transpose')
]
train_pipeline = [
    dict(type='CachedVideoInit'),  # the decoded-clip cache of the dataset config
    dict(type='CandidateSampleFrames', clip_len=8, frame_interval=4, candidate_ratio=1.5),
    dict(type='CheckedVideoDecode'),
    dict(type='PixelDiffFrameSelect', frame_budget=8, tubelet_size=2),
    *motion_flips,
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='CachedVideoInit'),  # the decoded-clip cache of the dataset config
    dict(type='CandidateSampleFrames', clip_len=8, frame_interval=4, candidate_ratio=1.5, test_mode=True),
    dict(type='CheckedVideoDecode'),
    dict(type='PixelDiffFrameSelect', frame_budget=8, tubelet_size=2, test_mode=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
# MMEngine resolved the base's pipeline variables at parse time: restate the expanded keys.
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=val_pipeline))
