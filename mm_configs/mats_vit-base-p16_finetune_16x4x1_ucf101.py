# MATS fine-tuning of ViT-B/16 on UCF101 (split 1): 60 % of the tokens by motion, in training
# and at test. Everything else as the full-token UCF101 file.
_base_ = ['videomae_vit-base-p16_finetune_16x4x1_ucf101.py']

model = dict(backbone=dict(keep_ratio=0.6, drop_at_test=True))
