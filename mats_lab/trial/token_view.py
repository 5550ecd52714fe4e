"""Which tokens a MATS model keeps on one video, computed the way the model computes it.

The clip is decoded with the config's own test pipeline (falling back to val, then train),
forced to a single view: one clip (``num_clips=1``, test mode) and one centre crop (multi-crop
and random crops become ``CenterCrop``, augmentations are dropped). While the pipeline runs,
the frame indices and the geometry are tracked: MMAction2's crop transforms record
``crop_bbox`` in the coordinates of the image they cropped, its ``Resize`` the cumulative
``scale_factor``; composing them gives the crop box in source pixels. The model is built from
the config (fixed seed, or a checkpoint), the clip goes through the model's own
``data_preprocessor`` and then the backbone's :meth:`~mats_lab.models.vit.VideoViT.prepare`
and :func:`~mats_lab.core.selection.select_topk`: the very code path of the forward pass,
frame selection included.

The entry point is :func:`compute_token_view`; :func:`render_token_view` draws the result with
:mod:`mats_lab.trial.token_picture`.

One file although it passes 400 lines: the single-view pipeline, the geometry it tracks and the
model's own selection are one computation whose parts must agree (a crop box computed apart
from the pipeline that cropped would drift from it).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mats_lab.trial.configs import FRAME_SAMPLERS

__all__ = [
    "DecodedClip",
    "TokenView",
    "compute_token_view",
    "config_pipeline",
    "decode_clip",
    "render_token_view",
    "single_view_pipeline",
]

# Frame samplers whose views are forced to one clip in test mode.
# Multi-view and random crops, replaced by a centre crop of the same size (argument name).
_TO_CENTRE_CROP = {"ThreeCrop": "crop_size", "TenCrop": "crop_size", "RandomCrop": "size"}
# Random augmentations (train pipelines only), dropped: the view must be deterministic.
_DROPPED = {
    "Flip",
    "VideoRandAugment",
    "RandAugment",
    "ColorJitter",
    "RandomErasing",
    "RandomResizedCrop",
    "MultiScaleCrop",
    "RandomRescale",
    "ImgAug",
    "PytorchVideoWrapper",
    "TorchVisionWrapper",
}
# Where the decoded frames stop being a list of H x W x C images.
_FORMATTERS = {"FormatShape", "PackActionInputs"}


# --------------------------------------------------------------------------------------------
# Decoding one view
# --------------------------------------------------------------------------------------------


def config_pipeline(cfg: Any) -> tuple[str, list[dict]]:
    """``(split, pipeline)`` from ``test_dataloader``, else ``val_dataloader``, else
    ``train_dataloader`` (wrapped datasets, e.g. ``RepeatDataset``, are looked into)."""
    for split in ("test", "val", "train"):
        loader = cfg.get(f"{split}_dataloader")
        dataset = loader.get("dataset") if isinstance(loader, Mapping) else None
        while isinstance(dataset, Mapping):
            if dataset.get("pipeline"):
                return split, [dict(step) for step in dataset["pipeline"]]
            dataset = dataset.get("dataset")
    raise ValueError("the config has no test/val/train dataloader with a dataset pipeline")


def single_view_pipeline(pipeline: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The pipeline forced to one deterministic view.

    Samplers get ``num_clips=1`` and ``test_mode=True`` (and no ``twice_sample``); ``ThreeCrop``
    / ``TenCrop`` / ``RandomCrop`` become ``CenterCrop`` of the same size;
    ``PixelDiffFrameSelect`` runs in test mode; random augmentations are dropped.
    """
    out: list[dict] = []
    for step in pipeline:
        step = copy.deepcopy(dict(step))
        kind = step.get("type")
        if kind in _DROPPED:
            continue
        if kind in FRAME_SAMPLERS:
            step["num_clips"] = 1
            step["test_mode"] = True
            step.pop("twice_sample", None)
        elif kind in _TO_CENTRE_CROP:
            step = {"type": "CenterCrop", "crop_size": step[_TO_CENTRE_CROP[kind]]}
        elif kind == "PixelDiffFrameSelect":
            step["test_mode"] = True
        out.append(step)
    return out


@dataclass
class DecodedClip:
    """One view of a video as the config's pipeline makes it.

    Attributes:
        frames: ``(T_c, H, W, C)`` uint8, the frames after resizing and cropping, before
            normalisation (``T_c``: all candidates with adaptive frame selection).
        frame_indices: ``(T_c,)`` source frame index of each frame.
        packed: the pipeline's output (``inputs``, ``data_samples``).
        source_size: ``(W, H)`` of the decoded video.
        crop_box: ``(x0, y0, x1, y1)`` of the view in source pixels.
        resized_to: ``(w, h)``, the whole source frame at the model input's scale.
        input_size: ``(w, h)`` of the frames the model gets.
        split: which dataloader's pipeline was used.
    """

    frames: np.ndarray
    frame_indices: np.ndarray
    packed: dict
    source_size: tuple[int, int]
    crop_box: tuple[float, float, float, float]
    resized_to: tuple[int, int]
    input_size: tuple[int, int]
    split: str


def _window(results: dict, window: tuple[int | None, int | None], filename: str) -> None:
    """Make the sampler see only source frames ``[start, end)``."""
    total = int(results["total_frames"])
    start = 0 if window[0] is None else int(window[0])
    end = total if window[1] is None else int(window[1])
    if not 0 <= start < end <= total:
        raise ValueError(
            f"{filename}: frame window [{start}, {end}) is not inside the video's {total} frames"
        )
    results["total_frames"] = end - start
    results["start_index"] = start


def decode_clip(
    cfg: Any,
    video: str | Path,
    window: tuple[int | None, int | None] = (None, None),
) -> DecodedClip:
    """Run the config's pipeline, forced to one view, on ``video``.

    Args:
        cfg: an MMEngine config with a dataloader pipeline.
        video: the video file.
        window: ``(start, end)`` source frames the sampler may use (``None``: the ends); the
            sampler then works as on a video trimmed to that window.
    """
    from mmaction.registry import TRANSFORMS

    split, pipeline = config_pipeline(cfg)
    transforms = [TRANSFORMS.build(step) for step in single_view_pipeline(pipeline)]
    filename = str(video)
    results: dict = dict(filename=filename, label=-1, start_index=0, modality="RGB")
    frames: np.ndarray | None = None
    frame_indices: np.ndarray | None = None
    box: list[float] | None = None  # the current image's extent in source pixels
    shape: tuple[int, int] | None = None  # the current image's (h, w)
    source: tuple[int, int] | None = None  # the decoded frames' (h, w)
    scale = np.ones(2)  # cumulative (w, h) resize factor, as Resize records it
    windowed = window == (None, None)
    for transform in transforms:
        name = type(transform).__name__
        if name in _FORMATTERS and frames is None:
            frames = np.stack(results["imgs"])  # (T_c, H, W, C)
            frame_indices = np.asarray(results["frame_inds"], dtype=np.int64).reshape(-1)
        old_bbox = results.get("crop_bbox")
        out = transform(results)
        if out is None:
            raise ValueError(f"{filename}: the pipeline step {name} rejected the clip")
        results = out
        if not windowed and "total_frames" in results:
            _window(results, window, filename)
            windowed = True
        if box is None and "original_shape" in results:
            height, width = (int(v) for v in results["original_shape"][:2])
            box, shape = [0.0, 0.0, float(width), float(height)], (height, width)
            source = (height, width)
        if box is None or shape is None or "img_shape" not in results:
            continue  # not decoded yet, or packed (the geometry is final)
        bbox = results.get("crop_bbox")
        if bbox is not None and bbox is not old_bbox:  # a crop, in the current image's pixels
            x0, y0, x1, y1 = (float(v) for v in bbox)
            sx = (box[2] - box[0]) / shape[1]
            sy = (box[3] - box[1]) / shape[0]
            box = [box[0] + x0 * sx, box[1] + y0 * sy, box[0] + x1 * sx, box[1] + y1 * sy]
        shape = (int(results["img_shape"][0]), int(results["img_shape"][1]))
        scale = np.asarray(results.get("scale_factor", scale), dtype=np.float64)
    if frames is None or frame_indices is None or box is None or shape is None or source is None:
        raise ValueError(
            f"{filename}: the pipeline of the config's {split} dataloader never decoded frames "
            "and formatted them (no FormatShape / PackActionInputs)"
        )
    if "inputs" not in results:
        raise ValueError(f"{filename}: the {split} pipeline does not end with PackActionInputs")
    height, width = source
    return DecodedClip(
        frames=frames,
        frame_indices=frame_indices,
        packed=results,
        source_size=(width, height),
        crop_box=(box[0], box[1], box[2], box[3]),
        resized_to=(round(width * scale[0]), round(height * scale[1])),
        input_size=(shape[1], shape[0]),
        split=split,
    )


# --------------------------------------------------------------------------------------------
# The model's selection
# --------------------------------------------------------------------------------------------


@dataclass
class TokenView:
    """The model's token (and frame) selection on one view of a video.

    Attributes:
        clip: the decoded view.
        grid: ``(t, h, w)`` token grid of the frames the model used.
        tubelet_size, patch_size: ``t_s`` and ``p``.
        keep_ratio: fraction of all ``N`` tokens kept.
        scorer: the backbone's scorer.
        kept: ``(K,)`` ascending raster indices ``n = t*h*w + row*w + col``.
        scores: ``(N,)`` every token's score.
        selected_tubelets: ``(t,)`` candidate tubelets kept by frame selection, or ``None``
            without frame selection.
        frame_indices: ``(T,)`` source frames the model used (after frame selection).
    """

    clip: DecodedClip
    grid: tuple[int, int, int]
    tubelet_size: int
    patch_size: int
    keep_ratio: float
    scorer: str
    kept: np.ndarray
    scores: np.ndarray
    selected_tubelets: np.ndarray | None
    frame_indices: np.ndarray

    @property
    def used_frames(self) -> np.ndarray:
        """``(T, H, W, C)`` the frames the model used, after frame selection."""
        if self.selected_tubelets is None:
            return self.clip.frames
        pos = self.selected_tubelets[:, None] * self.tubelet_size + np.arange(self.tubelet_size)
        return self.clip.frames[pos.reshape(-1)]

    def to_json(self) -> dict:
        """The JSON record of ``mats-lab show-tokens --json``."""
        t, h, w = self.grid
        record: dict[str, Any] = {
            "frame_indices": self.frame_indices.tolist(),
            "source_size": list(self.clip.source_size),
            "crop_box": [round(v, 3) for v in self.clip.crop_box],
            "resized_to": list(self.clip.resized_to),
            "input_size": list(self.clip.input_size),
            "pipeline": self.clip.split,
            "grid": [t, h, w],
            "tubelet_size": self.tubelet_size,
            "patch_size": self.patch_size,
            "num_tokens": t * h * w,
            "keep_ratio": self.keep_ratio,
            "scorer": self.scorer,
            "kept": self.kept.tolist(),
            "scores": [float(s) for s in self.scores[self.kept]],
        }
        if self.selected_tubelets is not None:
            record["candidate_frame_indices"] = self.clip.frame_indices.tolist()
            record["selected_tubelets"] = self.selected_tubelets.tolist()
        return record


def _build_model(cfg: Any, checkpoint: str | Path | None) -> Any:
    """Build ``cfg.model`` (seeded) and load ``checkpoint`` if given; returns the model."""
    import torch
    from mmaction.registry import MODELS

    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        from mmengine.runner import load_checkpoint

        ckpt = load_checkpoint(model, str(checkpoint), map_location="cpu", strict=False)
        state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, Mapping) else {}
        keys = [k.removeprefix("module.") for k in state]
        if not any(k.startswith("backbone.") for k in keys):
            if not any(k.startswith("patch_embed.") for k in keys):
                raise ValueError(
                    f"{checkpoint}: holds no backbone weights (no 'backbone.*' or "
                    "'patch_embed.*' keys)"
                )
            # A bare backbone state dict.
            load_checkpoint(model.backbone, str(checkpoint), map_location="cpu", strict=False)
    return model.eval()


def compute_token_view(
    config: str | Path,
    video: str | Path,
    keep_ratio: float | None = None,
    checkpoint: str | Path | None = None,
    cfg_options: Mapping[str, object] | None = None,
    window: tuple[int | None, int | None] = (None, None),
) -> TokenView:
    """Decode one view of ``video`` as ``config`` does and select its tokens with the model.

    Args:
        config: an mm_configs/ file (a ``Recognizer3D`` or ``MATSPretrainer`` with a MATS
            backbone).
        video: the video file.
        keep_ratio: overrides the backbone's ``keep_ratio``.
        checkpoint: weights for the model (``backbone.*`` keys, or a bare backbone state
            dict); without one the weights are the seeded fresh initialisation.
        cfg_options: dotted config overrides (checked, see :mod:`mats_lab.trial.configs`).
        window: ``(start, end)`` source frames the sampler may use.

    Raises:
        ValueError / KeyError / TypeError: a bad config, option or keep ratio.
        mats_lab.data.decode.VideoDecodeError: the video does not decode.
    """
    import torch
    from mmengine.registry import init_default_scope

    import mats_lab.mm  # noqa: F401  (registers the components)
    from mats_lab.core.selection import select_topk
    from mats_lab.models.vit import VideoViT
    from mats_lab.trial.configs import load_config

    init_default_scope("mmaction")
    options = dict(cfg_options or {})
    if keep_ratio is not None:
        options["model.backbone.keep_ratio"] = float(keep_ratio)
    cfg = load_config(config, options)
    model = _build_model(cfg, checkpoint)
    backbone = model.backbone
    if not isinstance(backbone, VideoViT):
        raise TypeError(
            f"{config}: the backbone is {type(backbone).__name__}, not a MATS video ViT"
        )
    clip = decode_clip(cfg, video, window)
    data = model.data_preprocessor(
        {"inputs": [clip.packed["inputs"]], "data_samples": [clip.packed["data_samples"]]},
        False,
    )
    inputs = data["inputs"]
    inputs = inputs.reshape(-1, *inputs.shape[-4:])[:1]  # (1, C, T_c, H, W): the one view
    with torch.no_grad():
        prep = backbone.prepare(inputs, with_scores=True)
        assert prep.scores is not None
        kept = select_topk(
            prep.scores, backbone.keep_ratio, nonnegative=backbone.scores_nonnegative
        )[0]  # (K,)
    t_s = backbone.tubelet_size
    num_candidates = clip.frames.shape[0] // t_s
    selected: np.ndarray | None = None
    frame_indices = clip.frame_indices
    if num_candidates != prep.grid[0]:  # adaptive frame selection chose tubelets
        selected = prep.tubelet_idx[0].cpu().numpy().astype(np.int64)
        pos = selected[:, None] * t_s + np.arange(t_s)
        frame_indices = clip.frame_indices[pos.reshape(-1)]
    return TokenView(
        clip=clip,
        grid=prep.grid,
        tubelet_size=t_s,
        patch_size=backbone.patch_size,
        keep_ratio=float(backbone.keep_ratio),
        scorer=backbone.scorer,
        kept=kept.cpu().numpy().astype(np.int64),
        scores=prep.scores[0].float().cpu().numpy(),
        selected_tubelets=selected,
        frame_indices=frame_indices,
    )


def render_token_view(view: TokenView, out: str | Path, title: str = "") -> tuple[int, int]:
    """Draw ``view`` as a PNG (one panel per tubelet, its first frame); returns its size.

    With frame selection every candidate tubelet has a panel, the dropped ones greyed.
    """
    from mats_lab.trial.token_picture import kept_mask, render_token_picture

    t_s = view.tubelet_size
    mask = kept_mask(view.kept, view.grid)  # (t, h, w)
    frames = view.clip.frames[::t_s, ..., :3]  # (candidates, H, W, 3): first frame each
    firsts = view.clip.frame_indices[::t_s]
    if view.selected_tubelets is None:
        panels_kept = mask
        selected = np.ones(len(frames), dtype=bool)
    else:
        panels_kept = np.zeros((len(frames), *mask.shape[1:]), dtype=bool)
        panels_kept[view.selected_tubelets] = mask
        selected = np.zeros(len(frames), dtype=bool)
        selected[view.selected_tubelets] = True
    labels = [
        f"frame {int(f)}" + ("" if chosen else " (dropped)")
        for f, chosen in zip(firsts, selected, strict=True)
    ]
    t, h, w = view.grid
    header = (
        f"keep_ratio {view.keep_ratio:g}: {len(view.kept)}/{t * h * w} tokens kept "
        f"({view.scorer} scores), grid {t}x{h}x{w}"
    )
    if view.selected_tubelets is not None:
        header += f", {t} of {len(frames)} candidate tubelets"
    text = header if not title else f"{title}\n{header}"
    return render_token_picture(
        np.ascontiguousarray(frames.astype(np.uint8)),
        panels_kept,
        out,
        selected=selected,
        labels=labels,
        title=text,
    )
