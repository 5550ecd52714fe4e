# MATS fine-tuning of ViT-B/16 on HMDB51 (split 1): 60 % of the tokens by motion, in training
# and at test. Everything else as the full-token HMDB51 file.
_base_ = ['videomae_vit-base-p16_finetune_16x4x1_hmdb51.py']

model = dict(backbone=dict(keep_ratio=0.6, drop_at_test=True))
