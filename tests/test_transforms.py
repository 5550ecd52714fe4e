"""Data-pipeline transforms (mats_lab.mm.transforms): decoding pair, candidate sampler,
pixel-difference selection, video RandAugment."""

from __future__ import annotations

import mats_lab.mm.compat

mats_lab.mm.compat.apply()  # before anything imports mmaction.models (STACK.md item 1)

from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from mmaction.registry import TRANSFORMS  # noqa: E402
from PIL import Image, ImageEnhance, ImageOps  # noqa: E402

from mats_lab.data.decode import VideoDecodeError  # noqa: E402
from mats_lab.mm import transforms as T  # noqa: E402

W, H, N = 64, 48, 40


def index_frame(i: int) -> np.ndarray:
    """Frame ``i`` with its index in six grey bands (bit b -> band b bright)."""
    img = np.full((H, W, 3), 30, np.uint8)
    for b in range(6):
        if (i >> b) & 1:
            img[:, b * W // 6 : (b + 1) * W // 6] = 220
    return img


def read_index(frame: np.ndarray) -> int:
    centres = [b * W // 6 + W // 12 for b in range(6)]
    return sum(1 << b for b, c in enumerate(centres) if frame[:, c - 1 : c + 1].mean() > 128)


@pytest.fixture(scope="module")
def mkv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames in MKV, whose container states 0 frames to PyAV."""
    path = tmp_path_factory.mktemp("videos") / "clip.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


# -- registry -----------------------------------------------------------------------------------

CONFIGS: list[dict[str, Any]] = [
    dict(type="CheckedVideoInit", backend="opencv"),
    dict(type="CheckedVideoDecode"),
    dict(type="CandidateSampleFrames", clip_len=16, candidate_ratio=1.5, seed=1),
    dict(type="PixelDiffFrameSelect", frame_budget=16, test_mode=True),
    dict(type="VideoRandAugment", num_ops=2, magnitude=9, seed=3),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c["type"] for c in CONFIGS])
def test_builds_from_config_with_a_repr(cfg: dict[str, Any]) -> None:
    transform = TRANSFORMS.build(dict(cfg))
    assert type(transform).__name__ == cfg["type"]
    text = repr(transform)
    assert text.startswith(cfg["type"] + "(")
    for key, value in cfg.items():
        if key != "type":
            assert f"{key}={value!r}" in text


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c["type"] for c in CONFIGS])
def test_unknown_config_key_raises(cfg: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="clip_lenn"):
        TRANSFORMS.build(dict(cfg, clip_lenn=8))


# -- decoding pair ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_init_sample_decode_pipeline_on_zero_count_container(mkv: Path, backend: str) -> None:
    init = T.CheckedVideoInit(backend=backend)
    sample = T.CandidateSampleFrames(clip_len=8, candidate_ratio=1.5, seed=0)
    decode = T.CheckedVideoDecode()
    results = decode(sample(init(dict(filename=str(mkv), start_index=0))))
    assert results["total_frames"] == N  # PyAV's container count says 0
    assert results["avg_fps"] == pytest.approx(25.0)
    assert results["video_reader"] is None
    assert len(results["imgs"]) == 12
    assert [read_index(f) for f in results["imgs"]] == results["frame_inds"].tolist()
    assert results["original_shape"] == results["img_shape"] == (H, W)


def test_decode_flattens_frame_inds_and_names_file_on_bad_index(mkv: Path) -> None:
    results = T.CheckedVideoInit()(dict(filename=str(mkv)))
    results["frame_inds"] = np.array([[3, 1], [2, 2]])
    results = T.CheckedVideoDecode()(results)
    assert results["frame_inds"].tolist() == [3, 1, 2, 2]
    assert [read_index(f) for f in results["imgs"]] == [3, 1, 2, 2]

    results = T.CheckedVideoInit()(dict(filename=str(mkv)))
    results["frame_inds"] = np.array([0, N])
    with pytest.raises(VideoDecodeError, match=rf"clip\.mkv.*index {N}\b"):
        T.CheckedVideoDecode()(results)
    assert results["video_reader"] is None  # closed even on error


def test_init_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match=r"gone\.mp4"):
        T.CheckedVideoInit()(dict(filename=str(tmp_path / "gone.mp4")))


def test_init_rejects_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown video backend"):
        T.CheckedVideoInit(backend="ffmpeg")


# -- candidate sampler --------------------------------------------------------------------------


def sample(total: int, start_index: int = 0, **kwargs: Any) -> dict[str, Any]:
    return T.CandidateSampleFrames(**kwargs)(dict(total_frames=total, start_index=start_index))


@pytest.mark.parametrize("clip_len,ratio,tubelet,expected", [(16, 1.5, 2, 24), (16, 1.0, 2, 16),
                                                              (16, 1.25, 2, 20), (8, 2.0, 1, 16),
                                                              (16, 1.3, 4, 20)])  # fmt: skip
def test_candidate_count(clip_len: int, ratio: float, tubelet: int, expected: int) -> None:
    results = sample(300, clip_len=clip_len, candidate_ratio=ratio, tubelet_size=tubelet, seed=0)
    assert results["frame_inds"].shape == (expected,)
    assert results["clip_len"] == expected
    assert results["frame_budget"] == clip_len
    assert results["candidate_ratio"] == ratio
    assert results["num_clips"] == 1 and results["frame_interval"] == 1


@pytest.mark.parametrize("test_mode", [False, True])
@pytest.mark.parametrize("total", [300, 97, 48])
@pytest.mark.parametrize("interval", [1, 2])
def test_one_tubelet_per_segment_spread_over_the_whole_video(
    test_mode: bool, total: int, interval: int
) -> None:
    s = T.CandidateSampleFrames(
        clip_len=16, frame_interval=interval, tubelet_size=2, test_mode=test_mode, seed=5
    )
    m = s.num_tubelets
    bounds = (np.arange(m + 1) * total) // m
    for _ in range(5):
        inds = s(dict(total_frames=total))["frame_inds"].reshape(m, 2)  # (tubelet, frame)
        assert (inds[:, 1] - inds[:, 0] == interval).all()  # a tubelet: frames interval apart
        assert (inds[:, 0] >= bounds[:-1]).all() and (inds[:, 1] < bounds[1:]).all()
        assert (np.diff(inds.reshape(-1)) > 0).all()  # temporal order


def test_training_positions_vary_and_cover_each_segment() -> None:
    s = T.CandidateSampleFrames(clip_len=4, candidate_ratio=1.0, tubelet_size=2, seed=0)
    starts = np.stack([s(dict(total_frames=100))["frame_inds"][::2] for _ in range(400)])
    # 2 segments of 50 frames: a tubelet (span 2) can start at 0..48 and 50..98
    assert starts[:, 0].min() == 0 and starts[:, 0].max() == 48
    assert starts[:, 1].min() == 50 and starts[:, 1].max() == 98


def test_test_mode_is_centred_and_deterministic() -> None:
    a = sample(100, clip_len=4, candidate_ratio=1.0, test_mode=True, seed=1)["frame_inds"]
    b = sample(100, clip_len=4, candidate_ratio=1.0, test_mode=True, seed=2)["frame_inds"]
    assert a.tolist() == b.tolist() == [24, 25, 74, 75]


def test_test_mode_views_differ_per_clip() -> None:
    inds = sample(100, clip_len=4, candidate_ratio=1.0, num_clips=2, test_mode=True)
    clips = inds["frame_inds"].reshape(2, 4)
    assert clips[0].tolist() == [12, 13, 62, 63]
    assert clips[1].tolist() == [36, 37, 86, 87]


def test_seed_determinism_and_variety() -> None:
    def draws(seed: int) -> list[list[int]]:
        s = T.CandidateSampleFrames(clip_len=16, seed=seed)
        return [s(dict(total_frames=500))["frame_inds"].tolist() for _ in range(3)]

    assert draws(0) == draws(0)
    assert draws(0) != draws(1)
    first = draws(0)
    assert first[0] != first[1]  # successive calls draw anew


def test_no_global_numpy_random_use() -> None:
    # The legacy global generator is exactly what must stay untouched.
    np.random.seed(0)  # noqa: NPY002
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    sample(500, clip_len=16, seed=None)
    T.PixelDiffFrameSelect(frame_budget=2)(
        dict(imgs=[np.zeros((4, 4, 3), np.uint8)] * 4, frame_inds=np.arange(4), clip_len=4)
    )
    T.VideoRandAugment()(dict(imgs=[np.zeros((8, 8, 3), np.uint8)] * 2))
    assert (np.random.get_state()[1] == before).all()  # noqa: NPY002


def test_worker_seed_decides_the_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    def draw(worker_seed: int, seed: int | None = None) -> list[int]:
        info = SimpleNamespace(id=0, seed=worker_seed)
        monkeypatch.setattr("mats_lab.mm.transforms._rng.get_worker_info", lambda: info)
        return sample(1000, clip_len=16, seed=seed)["frame_inds"].tolist()

    assert draw(123) == draw(123)
    assert draw(123) != draw(124)  # another worker, or the next epoch
    assert draw(123, seed=1) != draw(123, seed=2)


class _Sampled(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.sampler = T.CandidateSampleFrames(clip_len=16, seed=0)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> np.ndarray:
        return self.sampler(dict(total_frames=10_000))["frame_inds"]


def test_dataloader_workers_draw_differently() -> None:
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(_Sampled(), batch_size=None, num_workers=2)
    epoch1 = [x.tolist() for x in loader]
    epoch2 = [x.tolist() for x in loader]
    # worker 0 serves items 0 and 2, worker 1 items 1 and 3: same start, different workers
    assert epoch1[0] != epoch1[1]
    assert epoch1 != epoch2  # a new epoch reseeds the workers


@pytest.mark.parametrize("total", [30, 20, 12, 5])
def test_short_videos_stay_in_range_and_in_order(total: int) -> None:
    # 24 candidates wanted; too few frames for 12 disjoint tubelets
    for test_mode in (False, True):
        inds = sample(total, clip_len=16, test_mode=test_mode, seed=0)["frame_inds"]
        assert inds.shape == (24,)
        # still spans the whole video: first tubelet in the first 1/12, last in the last 1/12
        assert inds.min() <= total // 12 and inds.max() >= total - 1 - total // 12
        assert (np.diff(inds[::2]) >= 0).all()  # tubelets in temporal order (may overlap)
        assert (inds[1::2] - inds[::2] == 1).all()


@pytest.mark.parametrize(
    "opt,expected", [("loop", [0, 1, 2, 0, 1]), ("repeat_last", [0, 1, 2, 2, 2])]
)
def test_video_shorter_than_one_tubelet(opt: str, expected: list[int]) -> None:
    inds = sample(3, clip_len=5, candidate_ratio=1.0, tubelet_size=5, out_of_bound_opt=opt)
    assert inds["frame_inds"].tolist() == expected


def test_start_index_is_added() -> None:
    plain = sample(100, clip_len=4, candidate_ratio=1.0, test_mode=True)["frame_inds"]
    shifted = sample(100, start_index=1, clip_len=4, candidate_ratio=1.0, test_mode=True)
    assert (shifted["frame_inds"] == plain + 1).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(clip_len=15), "multiple of tubelet_size"),
        (dict(clip_len=16, candidate_ratio=0.5), "candidate_ratio"),
        (dict(clip_len=16, out_of_bound_opt="wrap"), "out_of_bound_opt"),
    ],
)
def test_sampler_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        T.CandidateSampleFrames(**kwargs)


def test_sampler_names_file_with_no_frames() -> None:
    with pytest.raises(ValueError, match=r"a\.mp4: total_frames=0"):
        T.CandidateSampleFrames(clip_len=4)(dict(total_frames=0, filename="a.mp4"))


# -- pixel-difference selection -----------------------------------------------------------------

MOVING = [3, 7, 9]


def moving_clip(num_tubelets: int = 12, moving: list[int] = MOVING) -> list[np.ndarray]:
    """Tubelets of 2 frames; each tubelet has its own flat grey (big differences BETWEEN
    tubelets), and only tubelets in ``moving`` change within (a small square moves)."""
    frames = []
    for k in range(num_tubelets):
        first = np.full((32, 32, 3), 20 * k, np.uint8)
        second = first.copy()
        if k in moving:
            second[8:16, 8:16] = 255
        frames += [first, second]
    return frames


def select(frame_budget: int, imgs: list[np.ndarray], **kwargs: Any) -> dict[str, Any]:
    n = len(imgs)
    results = dict(imgs=imgs, frame_inds=np.arange(100, 100 + n), clip_len=n, num_clips=1)
    results.update(kwargs.pop("results", {}))
    return T.PixelDiffFrameSelect(frame_budget=frame_budget, **kwargs)(results)


@pytest.mark.parametrize("test_mode", [True, False])
def test_pixel_diff_keeps_the_moving_tubelets(test_mode: bool) -> None:
    imgs = moving_clip()
    for seed in range(5):
        out = select(6, imgs, test_mode=test_mode, seed=seed)
        expected = [2 * k + j for k in MOVING for j in (0, 1)]
        assert out["frame_inds"].tolist() == [100 + p for p in expected]
        assert all(a is imgs[p] for a, p in zip(out["imgs"], expected, strict=True))
        assert out["clip_len"] == 6 and out["frame_budget"] == 6


def test_training_fills_up_with_random_still_tubelets() -> None:
    imgs = moving_clip()
    extras = set()
    for seed in range(30):
        tubelets = select(8, imgs, seed=seed)["frame_inds"][::2] // 2 - 50
        assert set(MOVING) <= set(tubelets.tolist())
        assert (np.diff(tubelets) > 0).all()
        extras |= set(tubelets.tolist()) - set(MOVING)
    assert len(extras) >= 5  # the fourth tubelet is drawn uniformly among the still ones


def test_weighted_draw_probability_is_proportional_to_score() -> None:
    s = T.PixelDiffFrameSelect(frame_budget=2, seed=0)
    picks = [int(s.select(np.array([3.0, 1.0]))[0]) for _ in range(4000)]
    assert np.mean(np.array(picks) == 0) == pytest.approx(0.75, abs=0.03)
    zeros = [int(s.select(np.zeros(4))[0]) for _ in range(4000)]
    assert np.bincount(zeros, minlength=4) / 4000 == pytest.approx([0.25] * 4, abs=0.03)


def test_test_mode_ties_go_to_the_earlier_tubelet() -> None:
    s = T.PixelDiffFrameSelect(frame_budget=4, test_mode=True)
    assert s.select(np.array([1.0, 2.0, 1.0, 2.0, 1.0])).tolist() == [1, 3]
    assert s.select(np.zeros(5)).tolist() == [0, 1]


def test_pixel_diff_selects_per_clip() -> None:
    clip_a, clip_b = moving_clip(6, [1, 4]), moving_clip(6, [0, 5])
    results = dict(imgs=clip_a + clip_b, frame_inds=np.arange(24), clip_len=12, num_clips=2)
    out = T.PixelDiffFrameSelect(frame_budget=4, test_mode=True)(results)
    assert out["frame_inds"].tolist() == [2, 3, 8, 9, 12, 13, 22, 23]
    assert len(out["imgs"]) == 8 and out["clip_len"] == 4


def test_pixel_diff_with_single_frame_tubelets() -> None:
    imgs = [np.zeros((8, 8, 3), np.uint8)] * 6
    imgs = imgs[:3] + [np.full((8, 8, 3), 200, np.uint8)] + imgs[3:]  # frame 3 jumps
    out = select(2, imgs, tubelet_size=1, test_mode=True)
    assert out["frame_inds"].tolist() == [103, 104]  # scored against the previous frame


def test_pixel_diff_after_the_sampler_checks_the_budget() -> None:
    with pytest.raises(ValueError, match="frame_budget=16 differs"):
        select(6, moving_clip(), results=dict(frame_budget=16))
    with pytest.raises(ValueError, match="cannot keep 30 frames"):
        select(30, moving_clip())
    with pytest.raises(ValueError, match="23 imgs"):
        select(6, moving_clip()[:-1], results=dict(clip_len=24))


# -- RandAugment --------------------------------------------------------------------------------


def photo(seed: int = 0, size: tuple[int, int] = (40, 52)) -> np.ndarray:
    """A smooth colour gradient with noise: something every op visibly changes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    img = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1) + rng.normal(0, 8, (*size, 3)) + 20
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("op", T.RAND_AUGMENT_OPS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_every_op_treats_identical_frames_identically(op: str, sign: float) -> None:
    aug = T.VideoRandAugment(seed=0)
    clip = np.stack([photo()] * 5)
    out = aug.apply(clip, op, 7.0, sign)
    assert out.shape == clip.shape and out.dtype == np.uint8
    assert all((f == out[0]).all() for f in out)
    if op != "Identity":
        assert not (out[0] == clip[0]).all(), f"{op} changed nothing"


@pytest.mark.parametrize("seed", range(6))
def test_random_ops_are_the_same_for_every_frame(seed: int) -> None:
    imgs = [photo()] * 8
    out = T.VideoRandAugment(num_ops=4, magnitude=9, prob=1.0, seed=seed)(dict(imgs=imgs))["imgs"]
    assert len(out) == 8
    assert all((f == out[0]).all() for f in out)


def test_same_op_on_different_frames_is_the_per_frame_op() -> None:
    # geometric and point ops have no clip statistics: each frame is warped on its own
    clip = np.stack([photo(0), photo(1), photo(2)])
    aug = T.VideoRandAugment(seed=0)
    for op in ("Rotate", "ShearX", "TranslateYRel", "Invert", "SolarizeIncreasing"):
        together = aug.apply(clip, op, 6.0, -1.0)
        alone = np.concatenate([aug.apply(clip[i : i + 1], op, 6.0, -1.0) for i in range(3)])
        assert (together == alone).all(), op


def test_seed_determinism_and_variety_of_rand_augment() -> None:
    clip = [photo(i) for i in range(4)]

    def run(seed: int) -> list[np.ndarray]:
        aug = T.VideoRandAugment(seed=seed)
        return [f for _ in range(3) for f in aug(dict(imgs=list(clip)))["imgs"]]

    a, b, c = run(0), run(0), run(1)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert not all((x == y).all() for x, y in zip(a, c, strict=True))


def test_magnitude_and_prob_follow_timm() -> None:
    aug = T.VideoRandAugment(num_ops=4, magnitude=7, magnitude_std=0.5, seed=0)
    plans = [aug.draw() for _ in range(2000)]
    applied = [len(p) for p in plans]
    assert np.mean(applied) == pytest.approx(2.0, abs=0.1)  # 4 ops at prob 0.5
    mags = np.array([m for p in plans for _, m, _ in p])
    assert mags.mean() == pytest.approx(7.0, abs=0.05)
    assert mags.std() == pytest.approx(0.5, abs=0.05)
    assert {name for p in plans for name, _, _ in p} == set(T.TIMM_INCREASING_OPS)
    none = T.VideoRandAugment(prob=0.0, seed=0)
    clip = [photo()]
    assert (none(dict(imgs=list(clip)))["imgs"][0] == clip[0]).all()


def _pil(img: np.ndarray, fn: Any) -> np.ndarray:
    return np.asarray(fn(Image.fromarray(img)))


@pytest.mark.parametrize(
    "op,sign,reference",
    [
        ("AutoContrast", 1, ImageOps.autocontrast),
        ("Equalize", 1, ImageOps.equalize),
        ("Invert", 1, ImageOps.invert),
        ("PosterizeIncreasing", 1, lambda im: ImageOps.posterize(im, 4 - int(0.7 * 4))),
        ("SolarizeIncreasing", 1, lambda im: ImageOps.solarize(im, 256 - int(0.7 * 256))),
        ("ColorIncreasing", 1, lambda im: ImageEnhance.Color(im).enhance(1.63)),
        ("ContrastIncreasing", -1, lambda im: ImageEnhance.Contrast(im).enhance(0.37)),
        ("BrightnessIncreasing", 1, lambda im: ImageEnhance.Brightness(im).enhance(1.63)),
        ("SharpnessIncreasing", -1, lambda im: ImageEnhance.Sharpness(im).enhance(0.37)),
    ],
)
def test_point_ops_match_pil_on_a_single_frame(op: str, sign: float, reference: Any) -> None:
    img = photo(3)
    out = T.VideoRandAugment().apply(img[None], op, 7.0, sign)[0]
    diff = np.abs(out.astype(int) - _pil(img, reference).astype(int))
    assert diff.max() <= 1, f"{op}: max difference {diff.max()}"


@pytest.mark.parametrize("op,data", [("TranslateXRel", (1, 0, 0.315 * 52, 0, 1, 0)),
                                     ("ShearY", (1, 0, 0, 0.21, 1, 0))])  # fmt: skip
def test_geometric_ops_match_pil_inside_the_image(op: str, data: tuple[float, ...]) -> None:
    img = photo(4)
    out = T.VideoRandAugment(interpolation="bilinear").apply(img[None], op, 7.0, 1.0)[0]
    ref = _pil(
        img,
        lambda im: im.transform(
            im.size, Image.AFFINE, data, resample=Image.BILINEAR, fillcolor=(124, 116, 104)
        ),
    )
    diff = np.abs(out.astype(int) - ref.astype(int)).max(axis=-1)
    assert np.median(diff) <= 1
    assert np.mean(diff <= 1) > 0.9  # only pixels at the fill boundary differ


def test_rand_augment_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown RandAugment ops"):
        T.VideoRandAugment(ops=["Rotate", "Blur"])
    with pytest.raises(TypeError, match="uint8"):
        T.VideoRandAugment(seed=0)(dict(imgs=[np.zeros((4, 4, 3), np.float32)]))
