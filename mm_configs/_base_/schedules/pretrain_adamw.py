# MATS / VideoMAE pre-training recipe (METHOD §5): AdamW (0.9, 0.95), lr 1e-3 x batch / 256,
# weight decay 0.05 (none on norms, biases and the mask token), cosine after a linear warm-up.
max_epochs = 800
warmup_epochs = 40
base_lr = 1e-3 * 192 / 256  # 8 GPUs x 24 clips
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs + 1)
val_cfg = None
test_cfg = None
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys=dict(
            mask_token=dict(decay_mult=0.0),
            q_bias=dict(decay_mult=0.0),
            v_bias=dict(decay_mult=0.0))))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
# lr above is for a total batch of 192; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=192)
