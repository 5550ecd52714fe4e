# MATS fine-tuning of ViT-B/16 on Kinetics-400, 16x4x1: the top 60 % of tokens by motion
# (940 of 1568), in training and at test (METHOD §3). Everything else as the full-token file.
_base_ = ['videomae_vit-base-p16_finetune_16x4x1_kinetics-400.py']

model = dict(backbone=dict(keep_ratio=0.6, drop_at_test=True))
