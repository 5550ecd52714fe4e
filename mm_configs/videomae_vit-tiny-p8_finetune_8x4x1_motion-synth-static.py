# The static control of the tiny full-token fine-tuning: the same recipe on the same clips with
# every frame frozen at one random frame of its motion (`static=True`, built into
# `data/motion_synth-static`), so no motion is left and a classifier must stay near chance
# (0.1, ten classes). With the backbone's temporal centring every frozen clip reaches the encoder as
# zeros; to train on the raw frames instead (a plain single-frame classifier) add
#   --cfg-options model.backbone.temporal_center=False
# (benchmarks/tiny_accuracy.py runs both). MMEngine resolved the base's `data_root` and
# `synth` at parse time, so the expanded dataloader keys are overridden here.
_base_ = ['videomae_vit-tiny-p8_finetune_8x4x1_motion-synth.py']

data_root = '{{ fileDirname }}/../data/motion_synth-static'
train_dataloader = dict(
    dataset=dict(
        synth_root=data_root,
        static=True,
        ann_file=data_root + '/train_list_videos.txt',
        data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(
        synth_root=data_root,
        static=True,
        ann_file=data_root + '/val_list_videos.txt',
        data_prefix=dict(video=data_root)))
test_dataloader = dict(
    dataset=dict(
        synth_root=data_root,
        static=True,
        ann_file=data_root + '/test_list_videos.txt',
        data_prefix=dict(video=data_root)))
