# Runtime shared by every mats-lab config (MMAction2 1.2.0 / MMEngine 0.10.7).
# ``custom_imports`` loads mats_lab.mm, which registers the MATS components and applies the
# stack fixes (missing DRN module, weights_only resume) in every process, including
# MMAction2's own tools/train.py.
default_scope = 'mmaction'
custom_imports = dict(imports=['mats_lab.mm'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'))

# Random states in checkpoints and at every epoch start: a resumed run trains exactly as an
# uninterrupted one (mats_lab.mm.rng_state). A config that sets its own custom_hooks lists it too.
custom_hooks = [dict(type='RngStateHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
