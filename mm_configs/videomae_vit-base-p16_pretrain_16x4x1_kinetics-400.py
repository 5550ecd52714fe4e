# VideoMAE pre-training of ViT-B/16 on Kinetics-400, 16x4x1: 90 % tube masking (160 of 1568
# tokens visible), the decoder reconstructs every hidden token: 35.4 G MACs per clip. Same
# model class as MATS; only the masking differs.
_base_ = ['mats_vit-base-p16_pretrain_16x4x1_kinetics-400.py']

model = dict(masking='tube', visible_ratio=0.1, backbone=dict(keep_ratio=1.0))
