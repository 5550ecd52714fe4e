# Pre-training recipe of the official EVEREST scripts (run_ms_pretraining.py and
# scripts/ucf101/pretrain.sh; VideoMAE's is the same apart from the masking): AdamW
# (0.9, 0.95), weight decay 0.05 (none on norms, biases and the mask token), lr 1e-3,
# warm-up lr 1e-6 and minimum lr 1e-5, all three at a total batch of 256 and scaled by
# devices x batch per device / 256 (MMEngine's auto_scale_lr, applied by the Runner);
# 40 warm-up epochs, then cosine.
max_epochs = 800
warmup_epochs = 40
base_lr = 1e-3  # at a total batch of 256 (auto_scale_lr below)
min_lr = 1e-5  # at 256 too: a ratio of the (scaled) LR
warmup_lr = 1e-6  # at 256 too
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs + 1)
val_cfg = None
test_cfg = None
# bf16 autocast (mats_lab.mm.amp.AutocastOptimWrapper; the `precision` knob switches it).
optim_wrapper = dict(
    type='AutocastOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys=dict(
            mask_token=dict(decay_mult=0.0),
            q_bias=dict(decay_mult=0.0),
            v_bias=dict(decay_mult=0.0))))
param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=min_lr / base_lr, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=True, base_batch_size=256)
