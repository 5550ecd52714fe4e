"""``MotionFlip``: mirrors a clip in x, y or time, maps the label, draws from its own seeded
generator."""

from __future__ import annotations

import mats_lab.mm.compat

mats_lab.mm.compat.apply()  # before anything imports mmaction.models (STACK.md item 1)

from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from mmaction.registry import TRANSFORMS  # noqa: E402

from mats_lab.data.flips import check_label_map, flip_frames  # noqa: E402
from mats_lab.data.synth import FLIP_LABEL_MAPS  # noqa: E402
from mats_lab.mm.transforms import MotionFlip  # noqa: E402

T, H, W = 6, 4, 5


def clip(num_clips: int = 1) -> dict[str, Any]:
    """``num_clips x T`` frames; frame ``i`` holds ``i`` in every pixel plus a position code."""
    code = np.arange(H * W, dtype=np.uint8).reshape(H, W, 1) * 10
    imgs = [code + np.uint8(i) for i in range(num_clips * T)]
    return dict(
        imgs=[np.repeat(f, 3, axis=2) for f in imgs],
        label=4,
        frame_inds=np.arange(num_clips * T) * 3,
        clip_len=T,
        num_clips=num_clips,
        filename="clip.mp4",
    )


def test_builds_from_config_with_a_repr_and_refuses_unknown_keys() -> None:
    cfg = dict(type="MotionFlip", axis="temporal", label_map=[1, 0, 2], flip_ratio=0.25, seed=3)
    transform = TRANSFORMS.build(dict(cfg))
    assert isinstance(transform, MotionFlip)
    text = repr(transform)
    for key in ("axis", "label_map", "flip_ratio", "seed"):
        assert f"{key}={cfg[key]!r}" in text
    with pytest.raises(TypeError, match="flip_ratoi"):
        TRANSFORMS.build(dict(cfg, flip_ratoi=0.5))


@pytest.mark.parametrize("axis,pixel", [("horizontal", np.s_[:, ::-1]), ("vertical", np.s_[::-1])])
def test_spatial_flip_mirrors_every_frame_and_maps_the_label(axis: str, pixel: Any) -> None:
    results = clip()
    before = [f.copy() for f in results["imgs"]]
    out = MotionFlip(axis, FLIP_LABEL_MAPS[axis], flip_ratio=1.0, seed=0)(results)
    assert out[f"flip_{axis}"] is True
    assert out["label"] == 5  # clockwise -> counterclockwise in either mirror
    for got, want in zip(out["imgs"], before, strict=True):
        np.testing.assert_array_equal(got, want[pixel])
        assert got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out["frame_inds"], np.arange(T) * 3)  # order unchanged


def test_temporal_flip_reverses_each_clip_with_its_frame_inds() -> None:
    results = clip(num_clips=2)
    results["label"] = 6  # grow
    before = list(results["imgs"])
    out = MotionFlip("temporal", FLIP_LABEL_MAPS["temporal"], flip_ratio=1.0)(results)
    assert out["label"] == 7  # shrink
    order = [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6]  # clips stay in place, each reversed
    assert [int(f[0, 0, 0]) for f in out["imgs"]] == order
    assert all(out["imgs"][k] is before[i] for k, i in enumerate(order))
    assert out["frame_inds"].tolist() == [3 * i for i in order]


def test_flip_ratio_zero_changes_nothing() -> None:
    results = clip()
    before = list(results["imgs"])
    out = MotionFlip("horizontal", FLIP_LABEL_MAPS["horizontal"], flip_ratio=0.0)(results)
    assert out["flip_horizontal"] is False and out["label"] == 4
    assert all(a is b for a, b in zip(out["imgs"], before, strict=True))


def test_label_may_be_a_numpy_int() -> None:
    results = dict(clip(), label=np.int64(0))
    assert MotionFlip("horizontal", FLIP_LABEL_MAPS["horizontal"], 1.0)(results)["label"] == 1


def test_seeded_draws_repeat_and_follow_the_ratio() -> None:
    def draws(seed: int, ratio: float = 0.5) -> list[bool]:
        flip = MotionFlip("vertical", FLIP_LABEL_MAPS["vertical"], flip_ratio=ratio, seed=seed)
        return [flip(clip())["flip_vertical"] for _ in range(400)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert 0.4 < np.mean(draws(1)) < 0.6
    assert 0.2 < np.mean(draws(3, ratio=0.3)) < 0.4


def test_no_global_numpy_random_use() -> None:
    np.random.seed(0)  # noqa: NPY002
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    flip = MotionFlip("temporal", FLIP_LABEL_MAPS["temporal"], seed=None)
    for _ in range(10):
        flip(clip())
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


@pytest.mark.parametrize(
    "label_map,match",
    [
        ([0, 0, 1], "permutation"),
        ([1, 2, 0], "own inverse: class 0 -> 1 but 1 -> 2"),
        ([], "empty"),
    ],
)
def test_bad_label_maps_are_refused_at_construction(label_map: list[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MotionFlip("horizontal", label_map)


def test_bad_arguments_and_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="axis"):
        MotionFlip("diagonal", [0])
    with pytest.raises(ValueError, match="flip_ratio"):
        MotionFlip("temporal", [0], flip_ratio=1.5)
    flip = MotionFlip("horizontal", [1, 0], flip_ratio=1.0)
    with pytest.raises(ValueError, match=r"clip\.mp4: label 4 is outside label_map"):
        flip(clip())
    with pytest.raises(ValueError, match="one int label"):
        flip(dict(clip(), label=np.array([0, 1])))
    with pytest.raises(ValueError, match="gt_bboxes"):
        flip(dict(clip(), label=0, gt_bboxes=np.zeros((1, 4))))
    stale = dict(clip(), clip_len=4)
    with pytest.raises(ValueError, match="6 imgs for num_clips=1 x clip_len=4"):
        MotionFlip("temporal", FLIP_LABEL_MAPS["temporal"], flip_ratio=1.0)(stale)


def test_pure_helpers() -> None:
    frames = [np.arange(6).reshape(2, 3)]
    assert flip_frames(frames, "horizontal")[0].tolist() == [[2, 1, 0], [5, 4, 3]]
    assert flip_frames(frames, "vertical")[0].tolist() == [[3, 4, 5], [0, 1, 2]]
    assert flip_frames([1, 2, 3], "temporal") == [3, 2, 1]  # type: ignore[list-item]
    with pytest.raises(ValueError, match="axis"):
        flip_frames(frames, "spin")
    assert check_label_map(np.array([1, 0])) == (1, 0)
