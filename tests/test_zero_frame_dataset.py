"""A dataset whose video's container reports 0 frames still yields distinct, correct frames
(mmaction2's own PyAVInit returns copies of frame 0 there; STACK.md item 9)."""

import av
import numpy as np
import pytest
from test_decode import NUM_FRAMES, read_index, write_video


@pytest.mark.parametrize("suffix,codec", [("mkv", "libx264"), ("webm", "libvpx")])
def test_zero_frame_container_through_a_video_dataset(mm, tmp_path, suffix, codec):
    from mmaction.registry import DATASETS

    path = write_video(tmp_path / f"clip.{suffix}", codec)
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0
    (tmp_path / "list.txt").write_text(f"{path.name} 0\n")
    dataset = DATASETS.build(
        dict(
            type="VideoDataset",
            ann_file=str(tmp_path / "list.txt"),
            data_prefix=dict(video=str(tmp_path)),
            test_mode=True,
            pipeline=[
                dict(type="CheckedVideoInit", backend="pyav"),
                dict(
                    type="SampleFrames", clip_len=8, frame_interval=4, num_clips=1, test_mode=True
                ),
                dict(type="CheckedVideoDecode"),
                dict(type="FormatShape", input_format="NCTHW"),
                dict(type="PackActionInputs"),
            ],
        )
    )
    clip = dataset[0]["inputs"][0]  # (C, T, H, W) uint8
    frames = clip.permute(1, 2, 3, 0).numpy().astype(np.uint8)  # (T, H, W, C)
    indices = [read_index(f) for f in frames]
    assert len(set(indices)) == 8, indices  # distinct, not 8 copies of frame 0
    assert indices == sorted(indices) and indices[-1] < NUM_FRAMES
    assert indices[1] - indices[0] == 4  # the frames SampleFrames asked for
