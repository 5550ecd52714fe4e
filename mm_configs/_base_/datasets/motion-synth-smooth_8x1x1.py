# The smooth embedded dataset (`synth_size='smooth'`, mats_lab.data.synth_smooth): 32x32 clips
# of 12 frames, soft backgrounds and Gaussian blobs, the class carried by motion alone as in
# the default dataset. Few labels: 2 training clips a class, 50 a class for validation and
# test. The pre-training configs read `smooth-unlabelled` instead (2000 other clips, seed 1).
# 8x1x1: 8 consecutive frames, 1 clip (a random start in training, the middle at test).
data_root = '{{ fileDirname }}/../../../data/motion_synth_smooth'
synth_seed = 0
synth_size = 'smooth'
decode_backend = 'pyav'

dataset_type = 'MotionSynthDataset'
synth = dict(synth_root=data_root, synth_seed=synth_seed, synth_size=synth_size, static=False,
             decoded_cache=True)
# No flips: with the default dataset's label-mapping flips (16 variants of every clip) a
# fine-tuning from scratch reached 0.99 validation top-1 on 5 clips a class, and nothing was
# left for a pre-training to show. This dataset is the few-label regime without augmentation.
train_pipeline = [
    dict(type='CachedVideoInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=1, num_clips=1),
    dict(type='CheckedVideoDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='CachedVideoInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=1, num_clips=1, test_mode=True),
    dict(type='CheckedVideoDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=32,
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
    batch_size=50,
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
    batch_size=50,
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
