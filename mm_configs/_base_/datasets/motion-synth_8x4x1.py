# The embedded default dataset: generated 64x64 clips of 32 frames whose class is carried by
# motion alone (`mats-lab data synth`). It is built on first use into `data_root`.
# 8x4x1: 8 frames, every 4th, 1 clip: the whole 32-frame video.
data_root = '{{ fileDirname }}/../../../data/motion_synth'
synth_seed = 0
synth_size = 'default'
decode_backend = 'pyav'

dataset_type = 'MotionSynthDataset'
# decoded_cache: every clip is decoded once (checked PyAV decoding) into
# `<data_root>/decoded-v1/` and read back from there (`CachedVideoInit`: the same pixels, the
# same index checks); decoding the H.264 files again every epoch took about half the CPU of a
# tiny pre-training step (benchmarks/README.md, "The embedded benchmark").
synth = dict(synth_root=data_root, synth_seed=synth_seed, synth_size=synth_size, static=False,
             decoded_cache=True)
# Label-mapping flips (`MotionFlip`): a mirrored, transposed or reversed clip is a clip of
# the mirrored class (right <-> left, up-right <-> down-left, grow <-> shrink, ...), so each
# flip is a free, label-correct augmentation (16 variants of every clip); the maps are
# mats_lab.data.synth.FLIP_LABEL_MAPS, named 'motion-synth'.
# No random crop: it can cut the moving object, hence the label, out of the clip.
motion_flips = [
    dict(type='MotionFlip', axis=axis, label_map='motion-synth')
    for axis in ('horizontal', 'vertical', 'temporal', 'transpose')
]
train_pipeline = [
    dict(type='CachedVideoInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=4, num_clips=1),
    dict(type='CheckedVideoDecode'),
    *motion_flips,
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='CachedVideoInit'),
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
    sampler=dict(type='EpochTaggedSampler', shuffle=True),  # exact resume: mats_lab.mm.samplers
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
