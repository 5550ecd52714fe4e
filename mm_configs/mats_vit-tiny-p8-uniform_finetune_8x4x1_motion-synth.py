# Plain uniform sampling for the frame-selection study: 8 frames (4 tubelets) spread evenly
# over the whole video, no selection.
_base_ = ['mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py']

decode_backend = 'pyav'
# Label-mapping flips as in the base dataset config (mats_lab.data.synth.FLIP_LABEL_MAPS).
flip_label_maps = dict(
    horizontal=[1, 0, 2, 3, 5, 4, 6, 7],
    vertical=[0, 1, 3, 2, 5, 4, 6, 7],
    temporal=[1, 0, 3, 2, 5, 4, 7, 6])
motion_flips = [
    dict(type='MotionFlip', axis=axis, label_map=flip_label_maps[axis])
    for axis in ('horizontal', 'vertical', 'temporal')
]
train_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='CandidateSampleFrames', clip_len=8, frame_interval=4, candidate_ratio=1.0),
    dict(type='CheckedVideoDecode'),
    *motion_flips,
    dict(type='RandomResizedCrop', area_range=(0.6, 1.0)),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='CandidateSampleFrames', clip_len=8, frame_interval=4, candidate_ratio=1.0, test_mode=True),
    dict(type='CheckedVideoDecode'),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
# MMEngine resolved the base's pipeline variables at parse time: restate the expanded keys.
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=val_pipeline))
