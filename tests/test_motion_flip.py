"""``MotionFlip``: mirrors a clip in x, y or time or transposes it, maps the label, draws
from its own seeded generator."""

from __future__ import annotations

import mats_lab.mm.compat

mats_lab.mm.compat.apply()  # before anything imports mmaction.models (STACK.md item 1)

from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from mmaction.registry import TRANSFORMS  # noqa: E402

from mats_lab.data.flips import check_label_map, flip_frames  # noqa: E402
from mats_lab.data.synth import CLASSES, FLIP_LABEL_MAPS, PRESETS  # noqa: E402
from mats_lab.mm.transforms import MotionFlip  # noqa: E402

T, H, W = 6, 4, 5


def clip(num_clips: int = 1) -> dict[str, Any]:
    """``num_clips x T`` frames; frame ``i`` holds ``i`` in every pixel plus a position code."""
    code = np.arange(H * W, dtype=np.uint8).reshape(H, W, 1) * 10
    imgs = [code + np.uint8(i) for i in range(num_clips * T)]
    return dict(
        imgs=[np.repeat(f, 3, axis=2) for f in imgs],
        label=10,  # clockwise
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
    assert out["label"] == 11  # clockwise -> counterclockwise in either mirror
    for got, want in zip(out["imgs"], before, strict=True):
        np.testing.assert_array_equal(got, want[pixel])
        assert got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out["frame_inds"], np.arange(T) * 3)  # order unchanged


def test_temporal_flip_reverses_each_clip_with_its_frame_inds() -> None:
    results = clip(num_clips=2)
    results["label"] = 8  # grow
    before = list(results["imgs"])
    out = MotionFlip("temporal", FLIP_LABEL_MAPS["temporal"], flip_ratio=1.0)(results)
    assert out["label"] == 9  # shrink
    order = [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6]  # clips stay in place, each reversed
    assert [int(f[0, 0, 0]) for f in out["imgs"]] == order
    assert all(out["imgs"][k] is before[i] for k, i in enumerate(order))
    assert out["frame_inds"].tolist() == [3 * i for i in order]


def test_transpose_swaps_x_and_y_with_the_shape_and_maps_the_label() -> None:
    results = dict(clip(), label=CLASSES.index("up-right"), img_shape=(H, W))
    before = [f.copy() for f in results["imgs"]]
    out = MotionFlip("transpose", "motion-synth", flip_ratio=1.0)(results)
    assert CLASSES[out["label"]] == "down-left"  # step (1, -1) becomes (-1, 1)
    assert out["img_shape"] == (W, H)
    for got, want in zip(out["imgs"], before, strict=True):
        assert got.shape == (W, H, 3) and got.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(got[:, :, 0], want[:, :, 0].T)


@pytest.mark.parametrize("axis", ["horizontal", "vertical", "temporal", "transpose"])
def test_named_motion_synth_map_is_the_dataset_map(axis: str) -> None:
    assert MotionFlip(axis, "motion-synth").label_map == list(FLIP_LABEL_MAPS[axis])


def test_label_maps_follow_the_motion() -> None:
    """Each map sends a class to the class of the flipped motion, and every preset's class
    prefix is closed under it (so one named map serves all presets)."""
    steps = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1),
             "up-right": (1, -1), "down-left": (-1, 1), "up-left": (-1, -1),
             "down-right": (1, 1)}  # fmt: skip
    flip = {"horizontal": lambda x, y: (-x, y), "vertical": lambda x, y: (x, -y),
            "temporal": lambda x, y: (-x, -y), "transpose": lambda x, y: (y, x)}  # fmt: skip
    for axis, move in flip.items():
        label_map = FLIP_LABEL_MAPS[axis]
        for name, step in steps.items():
            assert steps[CLASSES[label_map[CLASSES.index(name)]]] == move(*step), (axis, name)
        for params in PRESETS.values():
            assert all(label_map[c] < params.num_classes for c in range(params.num_classes))
    grow, cw = CLASSES.index("grow"), CLASSES.index("clockwise")
    assert FLIP_LABEL_MAPS["temporal"][grow] == CLASSES.index("shrink")
    assert FLIP_LABEL_MAPS["transpose"][grow] == grow
    assert all(FLIP_LABEL_MAPS[a][cw] == cw + 1 for a in ("horizontal", "vertical", "transpose"))


def test_flip_ratio_zero_changes_nothing() -> None:
    results = clip()
    before = list(results["imgs"])
    out = MotionFlip("horizontal", FLIP_LABEL_MAPS["horizontal"], flip_ratio=0.0)(results)
    assert out["flip_horizontal"] is False and out["label"] == 10
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
    with pytest.raises(ValueError, match="unknown label_map name 'kinetics'"):
        MotionFlip("horizontal", "kinetics")
    with pytest.raises(ValueError, match="flip_ratio"):
        MotionFlip("temporal", [0], flip_ratio=1.5)
    flip = MotionFlip("horizontal", [1, 0], flip_ratio=1.0)
    with pytest.raises(ValueError, match=r"clip\.mp4: label 10 is outside label_map"):
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
    assert flip_frames(frames, "transpose")[0].tolist() == [[0, 3], [1, 4], [2, 5]]
    with pytest.raises(ValueError, match="axis"):
        flip_frames(frames, "spin")
    assert check_label_map(np.array([1, 0])) == (1, 0)


class _FlipFlags(torch.utils.data.Dataset):
    """Runs the four flips of a pipeline on a fresh clip per item; returns whether each
    flipped."""

    def __init__(self, flips: list[MotionFlip], length: int) -> None:
        self.flips, self.length = flips, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        results = dict(clip(), label=0)
        for flip in self.flips:
            results = flip(results)
        return torch.tensor([results[f"flip_{f.axis}"] for f in self.flips])


@pytest.mark.parametrize("seed", [None, 7])
def test_the_flips_of_one_pipeline_draw_independently_in_workers(seed: int | None) -> None:
    """Regression: all MotionFlips of a pipeline once shared one seed per worker, so the four
    flips happened together or not at all (2 variants of a clip instead of 16)."""
    axes = ("horizontal", "vertical", "temporal", "transpose")
    flips = [MotionFlip(axis, "motion-synth", seed=seed) for axis in axes]
    loader = torch.utils.data.DataLoader(_FlipFlags(flips, 256), batch_size=64, num_workers=1)
    flags = torch.cat(list(loader)).numpy()  # (256, 4) bool
    variants = {tuple(row) for row in flags.tolist()}
    assert len(variants) == 16
    for i in range(4):
        for j in range(i + 1, 4):
            assert (flags[:, i] != flags[:, j]).mean() > 0.3, (axes[i], axes[j])


def test_seeded_flips_of_different_axes_draw_different_numbers() -> None:
    horizontal = MotionFlip("horizontal", "motion-synth", seed=5)
    vertical = MotionFlip("vertical", "motion-synth", seed=5)
    h = [horizontal(clip())["flip_horizontal"] for _ in range(64)]
    v = [vertical(clip())["flip_vertical"] for _ in range(64)]
    assert h != v
