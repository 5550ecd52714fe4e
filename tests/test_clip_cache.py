"""The decoded-clip cache of the embedded dataset: exact pixels, index checks, staleness,
concurrent builds, and the cached pipeline against checked decoding through MMAction2."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

from mats_lab.data import synth
from mats_lab.data.clip_cache import (
    CACHE_DIR,
    ClipCache,
    StaleCacheError,
    ensure_clip_cache,
    list_videos,
)
from mats_lab.data.decode import open_video
from mats_lab.data.probe import VideoDecodeError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.ensure_dataset(tmp_path_factory.mktemp("cc") / "ms", seed=0, size="tiny")


def _fresh(tmp_path: Path) -> Path:
    return synth.ensure_dataset(tmp_path / "ms", seed=0, size="tiny")


def test_every_cached_frame_is_the_checked_decoders_frame(dataset: Path) -> None:
    cache = ClipCache(ensure_clip_cache(dataset))
    videos = list_videos(dataset)
    assert (
        cache.frames.shape[0]
        == len(videos)
        == sum(synth.resolve_params(0, "tiny").counts().values())
    )
    for rel in videos:
        with open_video(dataset / rel, "pyav") as reader:
            decoded = reader.get_frames(np.arange(reader.num_frames))
        cached = cache.reader(dataset / rel)
        assert cached.num_frames == decoded.shape[0]
        np.testing.assert_array_equal(cached.get_frames(np.arange(cached.num_frames)), decoded)
        # any order, repeats, as the samplers ask
        inds = np.array([3, 0, 3, 7, 1])
        np.testing.assert_array_equal(cached.get_frames(inds), decoded[inds])


def test_the_reader_checks_indices_and_returns_writable_copies(dataset: Path) -> None:
    cache = ClipCache(ensure_clip_cache(dataset))
    path = dataset / list_videos(dataset)[0]
    reader = cache.reader(path)
    with pytest.raises(VideoDecodeError, match="out of range"):
        reader.get_frames([0, reader.num_frames])
    frames = reader.get_frames([0, 1])
    frames[:] = 0  # must not touch the mapped cache
    assert cache.reader(path).get_frames([0, 1]).any()
    with pytest.raises(VideoDecodeError, match="not in the clip cache"):
        cache.reader(dataset / "videos" / "nope.mp4")


def test_a_second_ensure_reuses_the_cache(dataset: Path) -> None:
    folder = ensure_clip_cache(dataset)
    before = (folder / "frames.npy").stat().st_mtime_ns
    assert ensure_clip_cache(dataset) == folder
    assert (folder / "frames.npy").stat().st_mtime_ns == before


def test_a_changed_video_makes_the_cache_stale_and_ensure_rebuilds_it(tmp_path: Path) -> None:
    root = _fresh(tmp_path)
    folder = ensure_clip_cache(root)
    victim = root / list_videos(root)[2]
    other = root / list_videos(root)[0]
    victim.write_bytes(other.read_bytes())  # another clip under this name
    with pytest.raises(StaleCacheError, match="stale"):
        ClipCache(folder)
    calls: list[tuple[int, int]] = []
    ensure_clip_cache(root, progress=lambda *a: calls.append(a))
    assert calls and calls[-1][0] == calls[-1][1]  # rebuilt, every clip
    cache = ClipCache(folder)
    with open_video(victim, "pyav") as reader:
        np.testing.assert_array_equal(
            cache.reader(victim).get_frames(np.arange(8)), reader.get_frames(np.arange(8))
        )
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == [
        f".{CACHE_DIR}.lock"
    ]


def test_a_rebuilt_dataset_makes_the_cache_stale(tmp_path: Path) -> None:
    root = _fresh(tmp_path)
    ensure_clip_cache(root)
    meta = root / "meta.json"
    meta.write_text(meta.read_text().replace('"seed": 0', '"seed": 0 '))
    with pytest.raises(StaleCacheError, match=str(root)):
        ClipCache(root / CACHE_DIR)


def test_no_cache_is_an_error_naming_the_folder(tmp_path: Path) -> None:
    root = _fresh(tmp_path)
    with pytest.raises(StaleCacheError, match=CACHE_DIR):
        ClipCache(root / CACHE_DIR)


def _ensure_counting_builds(
    root: str, log: str, barrier: multiprocessing.synchronize.Barrier
) -> None:
    calls: list[int] = []
    barrier.wait()
    ensure_clip_cache(root, progress=lambda done, total: calls.append(done))
    if calls:
        with open(log, "a") as out:
            out.write(f"{os.getpid()}\n")


def test_concurrent_ensures_build_one_cache(tmp_path: Path) -> None:
    root = _fresh(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    barrier, log = ctx.Barrier(3), tmp_path / "builds.log"
    workers = [
        ctx.Process(target=_ensure_counting_builds, args=(str(root), str(log), barrier))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert len(log.read_text().splitlines()) == 1
    ClipCache(root / CACHE_DIR)  # complete and current


# ---------------------------------------------------------------- through MMAction2


def _pipeline(init: str, test_mode: bool) -> list[dict]:
    return [
        dict(type=init),
        dict(type="SampleFrames", clip_len=4, frame_interval=2, num_clips=1, test_mode=test_mode),
        dict(type="CheckedVideoDecode"),
        dict(type="FormatShape", input_format="NCTHW"),
        dict(type="PackActionInputs"),
    ]


def _dataset_cfg(root: Path, init: str, cached: bool, split: str = "val") -> dict:
    return dict(
        type="MotionSynthDataset",
        synth_root=str(root),
        synth_size="tiny",
        ann_file=f"{root}/{split}_list_videos.txt",
        data_prefix=dict(video=str(root)),
        pipeline=_pipeline(init, test_mode=True),
        test_mode=True,
        decoded_cache=cached,
    )


def test_cached_pipeline_gives_the_checked_pipelines_clips(mm, dataset: Path) -> None:
    import torch
    from mmaction.registry import DATASETS

    checked = DATASETS.build(_dataset_cfg(dataset, "CheckedVideoInit", cached=False, split="train"))
    cached = DATASETS.build(_dataset_cfg(dataset, "CachedVideoInit", cached=True, split="train"))
    assert len(cached) == len(checked)
    for i in range(len(cached)):
        a, b = checked[i], cached[i]
        assert torch.equal(a["inputs"], b["inputs"])
        assert int(a["data_samples"].gt_label) == int(b["data_samples"].gt_label)
    # several dataloader workers read the one mapped file
    loader = torch.utils.data.DataLoader(cached, batch_size=2, num_workers=2, collate_fn=list)
    seen = [item["inputs"] for batch in loader for item in batch]
    assert all(torch.equal(x, checked[i]["inputs"]) for i, x in enumerate(seen))


def test_cached_init_without_a_cache_decodes_the_file_checked(mm, dataset: Path) -> None:
    """One video through the pipeline (as show-tokens does): no cache, checked decoding."""
    import torch
    from mmaction.registry import DATASETS

    from mats_lab.mm.transforms.clip_cache import CachedVideoInit

    plain = DATASETS.build(_dataset_cfg(dataset, "CachedVideoInit", cached=False))
    checked = DATASETS.build(_dataset_cfg(dataset, "CheckedVideoInit", cached=False))
    assert torch.equal(plain[0]["inputs"], checked[0]["inputs"])
    with pytest.raises(VideoDecodeError, match="gone.mp4"):
        CachedVideoInit()(dict(filename=str(dataset / "gone.mp4")))
    with pytest.raises(ValueError, match="ffmpeg"):
        CachedVideoInit(backend="ffmpeg")
