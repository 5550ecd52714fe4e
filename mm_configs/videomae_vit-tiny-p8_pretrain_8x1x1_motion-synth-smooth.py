# VideoMAE baseline of the smooth-dataset pre-training: tube masking with 25 % visible, every
# hidden token reconstructed. Only the masking differs from the MATS file.
_base_ = ['mats_vit-tiny-p8_pretrain_8x1x1_motion-synth-smooth.py']

model = dict(masking='tube', visible_ratio=0.25, backbone=dict(keep_ratio=1.0))
