# MATS fine-tuning of ViT-B/16 on Something-Something v2: 60 % of the tokens by motion, in
# training and at test. Everything else as the full-token SSv2 file.
_base_ = ['videomae_vit-base-p16_finetune_16x2x1_sthv2.py']

model = dict(backbone=dict(keep_ratio=0.6, drop_at_test=True))
