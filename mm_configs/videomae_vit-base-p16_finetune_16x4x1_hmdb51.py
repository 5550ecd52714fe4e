# Full-token fine-tuning of a pre-trained ViT-B/16 on HMDB51 (split 1), 16x4x1, with the
# published recipe (METHOD §5: 100 epochs, batch 16 per GPU on 8 GPUs, layer decay 0.75,
# RandAugment m7-n4, label smoothing 0.1, drop path 0.1, test 5 clips x 3 crops).
# Layout as MMAction2's tools/data/hmdb51 prepares it: data/hmdb51/videos/<class>/<name>.avi
# and lists `<class>/<name>.avi <label>`; splits 2 and 3: change the `_split_1_` in the names.
_base_ = ['videomae_vit-base-p16_finetune_16x4x1_kinetics-400.py']

data_root = 'data/hmdb51/videos'
ann_file_train = 'data/hmdb51/hmdb51_train_split_1_videos.txt'
ann_file_val = 'data/hmdb51/hmdb51_val_split_1_videos.txt'
num_classes = 51

# No mixup / cutmix: EVEREST's UCF101 / HMDB51 scripts pass --mixup 0.0 --cutmix 0.0.
model = dict(cls_head=dict(num_classes=num_classes), data_preprocessor=dict(blending=None))
train_dataloader = dict(dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root)))
val_dataloader = dict(dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root)))
test_dataloader = dict(dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root)))
