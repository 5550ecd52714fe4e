# MATS fine-tuning of the tiny ViT on the embedded motion dataset: 60 % of the tokens by motion,
# in training and at test.
_base_ = ['videomae_vit-tiny-p8_finetune_8x4x1_motion-synth.py']

model = dict(backbone=dict(keep_ratio=0.6))
