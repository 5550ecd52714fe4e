# The embedded default dataset: generated 64x64 clips of 32 frames whose class is carried by
# motion alone (`mats-lab data synth`). It is built on first use into `data_root`.
# 8x4x1: 8 frames, every 4th, 1 clip: the whole 32-frame video.
data_root = '{{ fileDirname }}/../../../data/motion_synth'
synth_seed = 0
synth_size = 'default'
decode_backend = 'pyav'

dataset_type = 'MotionSynthDataset'
synth = dict(synth_root=data_root, synth_seed=synth_seed, synth_size=synth_size, static=False)
# Label-mapping flips (`MotionFlip`): a mirrored or reversed clip is a clip of the mirrored
# class (right <-> left, clockwise <-> counterclockwise, grow <-> shrink, ...), so each flip
# is a free, label-correct augmentation; the maps are mats_lab.data.synth.FLIP_LABEL_MAPS.
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
    dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=1),
    dict(type='CheckedVideoDecode'),
    *motion_flips,
    dict(type='RandomResizedCrop', area_range=(0.6, 1.0)),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='CheckedVideoInit', backend=decode_backend),
    dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=1, test_mode=True),
    dict(type='CheckedVideoDecode'),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=data_root + '/train_list_videos.txt',
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline,
        **synth))
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=data_root + '/val_list_videos.txt',
        data_prefix=dict(video=data_root),
        pipeline=val_pipeline,
        test_mode=True,
        **synth))
test_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=data_root + '/test_list_videos.txt',
        data_prefix=dict(video=data_root),
        pipeline=val_pipeline,
        test_mode=True,
        **synth))
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
