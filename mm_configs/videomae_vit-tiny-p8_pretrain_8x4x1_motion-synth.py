# VideoMAE baseline of the tiny MATS pre-training: tube masking with 10 % visible, every
# hidden token reconstructed. Only the masking differs from the MATS file.
_base_ = ['mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py']

model = dict(masking='tube', visible_ratio=0.1, backbone=dict(keep_ratio=1.0))
