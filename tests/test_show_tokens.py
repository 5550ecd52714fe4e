"""``mats-lab show-tokens`` on a generated clip: a still textured background and one red
square that rests for the first frames, then slides to the right."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from mats_lab.cli.main import app
from mats_lab.trial.token_picture import kept_mask, picture_size, render_token_picture

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "mm_configs" / "mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
VIT_B = REPO / "mm_configs" / "mats_vit-base-p16_finetune_16x4x1_kinetics-400.py"

WIDTH, HEIGHT, FRAMES = 128, 96, 32
SIDE, TOP, LEFT, SPEED, STILL_UNTIL = 28, 34, 8, 4, 14  # the square, in source pixels
RED = (230, 30, 30)


def square_left(frame: int) -> int:
    """x of the square's left edge: still until ``STILL_UNTIL``, then ``SPEED`` px a frame."""
    return LEFT + SPEED * max(0, frame - STILL_UNTIL)


def render_frames() -> np.ndarray:
    """``(FRAMES, HEIGHT, WIDTH, 3)`` uint8: smooth grey still texture plus the red square."""
    rng = np.random.default_rng(0)
    coarse = rng.uniform(60, 200, size=(12, 16, 1)).repeat(3, -1).astype(np.float32)
    background = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    background = np.clip(background, 0, 255).astype(np.uint8)
    frames = np.repeat(background[None], FRAMES, axis=0)
    for f in range(FRAMES):
        x = square_left(f)
        frames[f, TOP : TOP + SIDE, x : x + SIDE] = RED
    return frames


def write_video(path: Path, frames: np.ndarray) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.options = {"crf": "10", "preset": "fast", "threads": "1"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("show_tokens") / "square.mp4", render_frames())


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["show-tokens", *args])
    return result.exit_code, result.output


def show(clip: Path, tmp_path: Path, *args: str) -> dict:
    out, record = tmp_path / "tokens.png", tmp_path / "tokens.json"
    code, output = run(str(clip), "--out", str(out), "--json", str(record), *args)
    assert code == 0, output
    assert out.is_file()
    data = json.loads(record.read_text())
    assert data["image"] == "tokens.png"  # relative to the JSON file: the folder can move
    data["image"] = str(record.parent / data["image"])
    return data


def moving_tokens(frame_indices: list[int], grid: list[int], box: list[float]) -> set[int]:
    """Tokens of tubelet ``t`` whose patch the square touches in tubelet ``t`` or ``t - 1``
    (tubelet 0 scores as tubelet 1, METHOD §1), from the known square track."""
    t, h, w = grid
    x0, y0, x1, y1 = box
    per_tubelet = len(frame_indices) // t
    touched = np.zeros((t, h, w), dtype=bool)  # square present in the tubelet's own frames
    for k in range(t):
        for f in frame_indices[k * per_tubelet : (k + 1) * per_tubelet]:
            left, right = square_left(f), square_left(f) + SIDE
            cols = np.arange(w + 1) * (x1 - x0) / w + x0  # patch borders in source pixels
            rows = np.arange(h + 1) * (y1 - y0) / h + y0
            in_x = (cols[1:] > left) & (cols[:-1] < right)
            in_y = (rows[1:] > TOP) & (rows[:-1] < TOP + SIDE)
            touched[k] |= in_y[:, None] & in_x[None, :]
    moving = np.zeros_like(touched)
    moving[1:] = touched[1:] | touched[:-1]
    moving[0] = moving[1]
    return set(np.flatnonzero(moving.reshape(-1)).tolist())


def test_kept_tokens_sit_on_the_moving_square(clip: Path, tmp_path: Path) -> None:
    record = show(clip, tmp_path, "--keep-ratio", "0.1")
    assert record["grid"] == [4, 8, 8]  # tiny config: 8 frames / tubelet 2, 64 px / patch 8
    kept = record["kept"]
    assert len(kept) == int(0.1 * 256) == len(record["scores"])
    assert kept == sorted(kept)
    moving = moving_tokens(record["frame_indices"], record["grid"], record["crop_box"])
    assert len(moving) > len(kept)  # the test can fail
    on_square = len(set(kept) & moving) / len(kept)
    assert on_square >= 0.9, f"only {on_square:.2f} of the kept tokens are on the square"
    # the tubelets where the square rests (0 copies 1) keep nothing
    assert all(n >= 2 * 64 for n in kept)


def test_geometry_and_frames_follow_the_config(clip: Path, tmp_path: Path) -> None:
    record = show(clip, tmp_path, "--keep-ratio", "0.6")
    # tiny test pipeline: SampleFrames(clip_len=8, frame_interval=4, test_mode) → centred
    # offset (32 - 29) // 2 = 1; Resize((64, 64), keep_ratio=False) → the whole frame
    assert record["frame_indices"] == list(range(1, 32, 4))
    assert record["crop_box"] == [0.0, 0.0, WIDTH, HEIGHT]
    assert record["source_size"] == [WIDTH, HEIGHT]
    assert record["resized_to"] == [64, 64] == record["input_size"]
    assert record["keep_ratio"] == 0.6 and record["patch_size"] == 8
    assert record["num_tokens"] == 256 and len(record["kept"]) == int(0.6 * 256)
    assert "selected_tubelets" not in record and "candidate_frame_indices" not in record
    # the PNG: one panel per tubelet, at the documented size
    from PIL import Image

    with Image.open(record["image"]) as img:
        img.verify()
    with Image.open(record["image"]) as img:
        assert img.format == "PNG"
        assert img.size == picture_size(4, 64, 64) == tuple(record["image_size"])


def test_window_restricts_the_sampler(clip: Path, tmp_path: Path) -> None:
    record = show(clip, tmp_path, "--start", "2", "--end", "31", "--keep-ratio", "0.5")
    assert record["frame_indices"] == list(range(2, 31, 4))  # 29 frames: offset 0, from 2


def test_centre_crop_box_maps_back_to_source_pixels(mm: object, clip: Path) -> None:
    """ViT-B test pipeline (5 clips x ThreeCrop) forced to one centre view: the box is where
    the frames came from, checked on the square's position."""
    from mats_lab.trial.configs import load_config
    from mats_lab.trial.token_view import decode_clip, single_view_pipeline

    cfg = load_config(VIT_B)
    steps = single_view_pipeline(cfg.test_dataloader.dataset.pipeline)
    assert [s["type"] for s in steps if "Crop" in s["type"]] == ["CenterCrop"]
    assert next(s for s in steps if s["type"] == "SampleFrames")["num_clips"] == 1
    view = decode_clip(cfg, clip)
    assert view.split == "test"
    # Resize(-1, 224): 128x96 → 299x224; CenterCrop(224): x from (299 - 224) // 2 = 37
    assert view.resized_to == (299, 224) and view.input_size == (224, 224)
    x0, y0, x1, y1 = view.crop_box
    assert x0 == pytest.approx(37 * 128 / 299) and x1 == pytest.approx(261 * 128 / 299)
    assert (y0, y1) == (0.0, 96.0)
    assert view.frames.shape == (16, 224, 224, 3)
    # 16 frames every 4th of a 32-frame video: mmaction loops past the end
    assert view.frame_indices.tolist() == [(4 * i) % FRAMES for i in range(16)]
    scale = (x1 - x0) / 224  # source pixels per input pixel
    for frame, index in zip(view.frames, view.frame_indices, strict=True):
        red = (frame[..., 0] > 180) & (frame[..., 1] < 90) & (frame[..., 2] < 90)
        cols, rows = np.flatnonzero(red.any(0)), np.flatnonzero(red.any(1))
        # the square's visible extent, mapped back through the crop box
        left, right = x0 + cols[0] * scale, x0 + (cols[-1] + 1) * scale
        top, bottom = y0 + rows[0] * scale, y0 + (rows[-1] + 1) * scale
        want_left = max(square_left(int(index)), x0)
        want_right = min(square_left(int(index)) + SIDE, x1)
        assert left == pytest.approx(want_left, abs=1.5), index
        assert right == pytest.approx(want_right, abs=1.5), index
        assert (top, bottom) == (pytest.approx(TOP, abs=1.5), pytest.approx(TOP + SIDE, abs=1.5))


def test_frame_selection_reports_candidates(clip: Path, tmp_path: Path) -> None:
    step = "test_dataloader.dataset.pipeline.1"
    options = [
        f"{step}.type=CandidateSampleFrames",
        f"{step}.frame_interval=1",
        f"{step}.candidate_ratio=1.5",
        "model.backbone.candidate_ratio=1.5",
    ]
    args = [a for option in options for a in ("--cfg-options", option)]
    record = show(clip, tmp_path, "--keep-ratio", "0.3", *args)
    candidates = record["candidate_frame_indices"]
    # 12 candidates (6 tubelets of 2), one centred in each sixth of the 32 frames
    assert candidates == [1, 2, 6, 7, 12, 13, 17, 18, 22, 23, 28, 29]
    selected = record["selected_tubelets"]
    assert len(selected) == 4 and selected == sorted(selected)
    assert record["frame_indices"] == [candidates[2 * i + j] for i in selected for j in (0, 1)]
    assert record["grid"] == [4, 8, 8]
    # candidates 0-2 show the resting square: the moving ones (3, 4, 5) are chosen
    assert {3, 4, 5} <= set(selected)


def test_checkpoint_weights_are_used(mm: object, clip: Path, tmp_path: Path) -> None:
    import torch
    from mmaction.registry import MODELS

    from mats_lab.trial.configs import load_config

    torch.manual_seed(0)
    model = MODELS.build(load_config(TINY).model)
    state = model.state_dict()
    # The score is the norm of an embedding difference: the bias cancels and a doubled
    # projection doubles every score, leaving the selection unchanged.
    state["backbone.patch_embed.projection.weight"] *= 2.0
    state["backbone.patch_embed.projection.bias"] += 5.0
    ckpt = tmp_path / "tiny.pth"
    torch.save({"state_dict": state}, ckpt)
    fresh = show(clip, tmp_path, "--keep-ratio", "0.2")
    loaded = show(clip, tmp_path, "--keep-ratio", "0.2", "--checkpoint", str(ckpt))
    assert loaded["checkpoint"] == str(ckpt)
    assert loaded["kept"] == fresh["kept"]
    np.testing.assert_allclose(loaded["scores"], 2 * np.asarray(fresh["scores"]), rtol=1e-4)


def test_bad_inputs_exit_2_naming_them(clip: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.png")
    missing = tmp_path / "nope.mp4"
    code, output = run(str(missing), "--out", out)
    assert code == 2 and str(missing) in output

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 10)
    code, output = run(str(garbage), "--out", out)
    assert code == 2 and str(garbage) in output

    for ratio in ("0", "1.5", "-0.2"):
        code, output = run(str(clip), "--out", out, "--keep-ratio", ratio)
        assert code == 2 and ratio in output, output
    code, output = run(str(clip), "--out", out, "--keep-ratio", "0.001")  # keeps no token
    assert code == 2 and "0.001" in output, output

    ckpt = tmp_path / "none.pth"
    code, output = run(str(clip), "--out", out, "--checkpoint", str(ckpt))
    assert code == 2 and str(ckpt) in output

    code, output = run(str(clip), "--out", out, "--start", "20", "--end", "10")
    assert code == 2 and "[20, 10)" in output, output
    assert not Path(out).exists()


def test_picture_marks_dropped_tokens_and_frames(tmp_path: Path) -> None:
    """The renderer alone: kept patches keep their pixels, dropped ones are dimmed, frames
    that frame selection dropped are grey with a red border."""
    frames = np.full((3, 16, 16, 3), 200, np.uint8)
    kept = kept_mask([0, 3, 5], (3, 2, 2))  # tubelet 0: tokens 0, 3; tubelet 1: token 1
    assert kept.sum() == 3 and kept[0, 0, 0] and kept[0, 1, 1] and kept[1, 0, 1]
    size = render_token_picture(
        frames, kept, tmp_path / "p.png", selected=[True, True, False], title="t"
    )
    assert size == picture_size(3, 16, 16)
    from PIL import Image

    with Image.open(tmp_path / "p.png") as img:
        pixels = np.asarray(img.convert("RGB"))
    assert pixels.shape == (size[1], size[0], 3)
    from mats_lab.trial.token_picture import DIM, GAP, TITLE_PX

    side = 16 * 10  # 16-px frames are enlarged 10x (MIN_PANEL_PX 160)
    half = side // 2

    def patch(panel: int, row: int, col: int) -> np.ndarray:
        x = GAP + panel * (side + GAP) + col * half
        y = TITLE_PX + row * half
        return pixels[y + 3 : y + half - 3, x + 3 : x + half - 3].reshape(-1, 3)

    assert (patch(0, 0, 0) == 200).all() and (patch(0, 1, 1) == 200).all()
    assert (patch(0, 0, 1) == round(200 * DIM)).all() and (patch(1, 0, 1) == 200).all()
    assert (patch(2, 0, 0) == round(200 * DIM)).all()  # grey, dimmed
    border = pixels[TITLE_PX + side // 2, GAP + 2 * (side + GAP) + 1]
    assert border[0] > 200 and border[1] < 80  # red frame around the dropped candidate
    with pytest.raises(ValueError, match="multiple of the token grid"):
        render_token_picture(frames, kept_mask([], (3, 3, 3)), tmp_path / "q.png")
    with pytest.raises(ValueError, match=r"must lie in \[0, 12\)"):
        kept_mask([12], (3, 2, 2))
