# Fine-tuning recipe of the official VideoMAE / EVEREST scripts (run_class_finetuning.py
# defaults and scripts/*/finetune.sh): AdamW (0.9, 0.999), weight decay 0.05, layer decay
# 0.75, lr 1e-3, warm-up lr 1e-6 and minimum lr 1e-6, all three at a total batch of 256 and
# scaled by devices x batch per device / 256 (here: MMEngine's auto_scale_lr, applied by the
# Runner, so the `lr` knob is this base and the `batch_size` knob moves the LR with it);
# 5 warm-up epochs, then cosine. Drop path and label smoothing sit in the model.
max_epochs = 100
warmup_epochs = 5
base_lr = 1e-3  # at a total batch of 256 (auto_scale_lr below)
min_lr = 1e-6  # at 256 too: a ratio of the (scaled) LR
warmup_lr = 1e-6  # at 256 too
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# bf16 autocast (mats_lab.mm.amp.AutocastOptimWrapper: torch.autocast on the model's device;
# the `precision` knob switches it: fp32 / bf16 / fp16).
optim_wrapper = dict(
    type='AutocastOptimWrapper',
    dtype='bfloat16',
    constructor='LearningRateDecayOptimizerConstructor',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(decay_rate=0.75, decay_type='layer_wise', num_layers=12))
param_scheduler = [
    dict(type='LinearLR', start_factor=warmup_lr / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min_ratio=min_lr / base_lr, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=True, base_batch_size=256)
