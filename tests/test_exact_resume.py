"""Exact resume (issue 17): a run stopped after a checkpoint and resumed trains exactly as an
uninterrupted one — every per-iteration loss and the final validation accuracy equal, to the
bit — with persistent DataLoader workers, random flips, drop path and token selection.

Also the pieces: ``EpochTaggedSampler`` keeps ``DefaultSampler``'s order and tags it,
``sample_randomness`` makes a sample's draws a function of its entropy alone and leaves the
global generators as they were, and ``RngStateHook``'s states survive a ``weights_only``
checkpoint round trip. The same on two ranks, through the sweep: tests/test_distributed_sweep.py.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook  # mmengine alone: no stack fix needed before it

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "finetune": REPO / "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py",
    "pretrain": REPO / "mm_configs/mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py",
}
EPOCHS = 3


# -- the sampler ---------------------------------------------------------------------------


def test_tagged_sampler_keeps_default_order_and_tags_every_index(mm):
    from mmengine.dataset import DefaultSampler

    from mats_lab.mm.samplers import EpochIndex, EpochTaggedSampler

    data = list(range(13))
    plain, tagged = DefaultSampler(data, seed=7), EpochTaggedSampler(data, seed=7)
    for epoch in (0, 3):
        plain.set_epoch(epoch)
        tagged.set_epoch(epoch)
        indices = list(tagged)
        assert indices == list(plain)
        assert all(isinstance(i, EpochIndex) for i in indices)
        assert {(i.seed, i.epoch) for i in indices} == {(7, epoch)}
    back = pickle.loads(pickle.dumps(indices[4]))  # how indices reach DataLoader workers
    assert repr(back) == repr(indices[4]) and back.entropy(2) == (7, 3, int(indices[4]), 2)
    assert data[back] == int(back)  # an int to any dataset


def test_tagged_sampler_refuses_unknown_keys(mm):
    from mmaction.registry import DATA_SAMPLERS

    with pytest.raises(TypeError, match="shuffel"):
        DATA_SAMPLERS.build(dict(type="EpochTaggedSampler", dataset=[1], shuffel=True))


# -- per-sample randomness ------------------------------------------------------------------


def _flip_and_sample() -> tuple[list[bool], list[int]]:
    """Draws of a mats-lab transform (own generator) and MMAction2's SampleFrames (np.random)."""
    from mmaction.datasets.transforms import SampleFrames

    from mats_lab.mm.transforms import CandidateSampleFrames

    ours = CandidateSampleFrames(clip_len=8)
    theirs = SampleFrames(clip_len=4, frame_interval=2, num_clips=1)
    frames = [ours(dict(total_frames=300))["frame_inds"].tolist() for _ in range(2)]
    first = theirs(dict(total_frames=300, start_index=0))["frame_inds"].tolist()
    return [f[0] < f[1] for f in frames], frames[0] + frames[1] + first


def test_sample_randomness_depends_on_the_entropy_alone(mm, monkeypatch):
    from mats_lab.mm.transforms._rng import current_sample_entropy, sample_randomness

    def draw(entropy: tuple[int, ...], worker_seed: int, global_seed: int) -> list[int]:
        info = SimpleNamespace(id=0, seed=worker_seed)
        monkeypatch.setattr("mats_lab.mm.transforms._rng.get_worker_info", lambda: info)
        np.random.seed(global_seed)  # noqa: NPY002
        with sample_randomness(entropy):
            assert current_sample_entropy() == entropy
            return _flip_and_sample()[1]

    reference = draw((0, 1, 5, 0), worker_seed=11, global_seed=1)
    assert draw((0, 1, 5, 0), worker_seed=99, global_seed=2) == reference  # worker / resume
    assert draw((0, 2, 5, 0), worker_seed=11, global_seed=1) != reference  # the next epoch
    assert draw((0, 1, 6, 0), worker_seed=11, global_seed=1) != reference  # another sample
    assert current_sample_entropy() is None


def test_sample_randomness_leaves_the_global_generators_as_they_were(mm):
    from mats_lab.mm.transforms._rng import sample_randomness

    np.random.seed(3)  # noqa: NPY002
    random.seed(3)
    torch.manual_seed(3)
    expected = (np.random.random(), random.random(), torch.rand(1).item())  # noqa: NPY002
    np.random.seed(3)  # noqa: NPY002
    random.seed(3)
    torch.manual_seed(3)
    with pytest.raises(KeyError):  # also when loading fails
        with sample_randomness((1, 2, 3, 0)):
            np.random.random(), random.random(), torch.rand(1)  # noqa: NPY002
            raise KeyError("boom")
    assert (np.random.random(), random.random(), torch.rand(1).item()) == expected  # noqa: NPY002
    with pytest.raises(ValueError, match="non-negative"):
        with sample_randomness((-1, 0, 0, 0)):
            pass


# -- the hook's states ----------------------------------------------------------------------


class _Owner(torch.nn.Module):
    """A module with a lazily made generator, like VideoViT / MATSPretrainer."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self._generator: torch.Generator | None = None

    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(5)
        return self._generator


def _draw_all(model: _Owner) -> tuple:
    gen = model.generator(torch.device("cpu"))
    return (
        torch.rand(3).tolist(),
        np.random.random(3).tolist(),  # noqa: NPY002
        random.random(),
        random.gauss(0, 1),
        torch.rand(2, generator=gen).tolist(),
    )


def test_states_round_trip_through_a_weights_only_checkpoint(mm, tmp_path):
    from mats_lab.mm.compat import load_run_checkpoint
    from mats_lab.mm.rng_state import capture_rng_states, restore_rng_states

    model = _Owner()
    model.generator(torch.device("cpu")).manual_seed(9)
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    torch.save({"rng_states": capture_rng_states(model)}, tmp_path / "c.pth")
    expected = _draw_all(model)
    _draw_all(model)
    other = _Owner()
    restore_rng_states(other, load_run_checkpoint(str(tmp_path / "c.pth"))["rng_states"])
    assert _draw_all(other) == expected


def test_a_generator_made_after_the_snapshot_is_made_afresh_again(mm):
    from mats_lab.mm.rng_state import capture_rng_states, restore_rng_states

    model = _Owner()
    states = capture_rng_states(model)  # no generator yet
    first = torch.rand(2, generator=model.generator(torch.device("cpu"))).tolist()
    restore_rng_states(model, states)
    assert torch.rand(2, generator=model.generator(torch.device("cpu"))).tolist() == first


# -- a whole run ----------------------------------------------------------------------------


class _Stop(Exception):
    """Stands for a kill."""


class _Record(Hook):
    """Losses by iteration and validation metrics; raises ``_Stop`` once ``stop_after_epoch``
    (1-based) is checkpointed, before its validation (the harder place to be killed)."""

    priority = "LOWEST"

    def __init__(self, stop_after_epoch: int | None = None) -> None:
        self.losses: dict[int, float] = {}
        self.val: list[dict] = []
        self.stop_after_epoch = stop_after_epoch

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.losses[runner.iter + 1] = float(outputs["loss"].item())

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.stop_after_epoch:
            raise _Stop

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.val.append(dict(metrics or {}))


def _config(
    work_dir: Path, data: Path, name: str, rng_hook: bool, sampler: str, kind: str, epochs: int
):
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIGS[kind]))
    splits = ("train", "val") if kind == "finetune" else ("train",)
    for split in splits:
        loader = cfg[f"{split}_dataloader"]
        loader.dataset.update(
            synth_root=str(data),
            synth_size="tiny",
            ann_file=str(data / f"{split}_list_videos.txt"),
            data_prefix=dict(video=str(data)),
        )
        loader.batch_size = 2
        loader.num_workers = 2  # persistent workers: the case that drifted
        loader.persistent_workers = True
    cfg.train_dataloader.sampler.type = sampler
    cfg.train_dataloader.dataset.pipeline[1].clip_len = 8
    cfg.model.backbone.drop_path_rate = 0.2  # torch's global generator in every step
    cfg.train_cfg.max_epochs = epochs
    if kind == "finetune":
        cfg.model.backbone.keep_ratio = 0.5
        cfg.train_cfg.val_interval = 1
        cfg.default_hooks.checkpoint.save_best = None
    else:  # the module generators: the pre-trainer's masks, the backbone's draws
        cfg.model.seed = 1
        cfg.model.backbone.seed = 2
    cfg.custom_hooks = [dict(type="RngStateHook")] if rng_hook else []
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name
    cfg.randomness = dict(seed=3, deterministic=False)
    return cfg


def _train(cfg, record: _Record) -> None:
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    runner.register_hook(record, priority="LOWEST")
    try:
        runner.train()
    except _Stop:
        pass
    finally:
        _stop_persistent_workers(runner)


def _stop_persistent_workers(runner) -> None:
    """Shut the loaders' persistent workers down now, as a process exit would. Left to the
    garbage collector (the Runner sits in reference cycles), the iterator's index queues are
    finalised before it asks its workers to stop, so each worker waits out torch's 5 s status
    interval before it notices: 10 s per loader, in the middle of the next run."""
    loops = [runner.train_loop, runner.val_loop]
    for loop in loops:
        iterator = getattr(getattr(loop, "dataloader", None), "_iterator", None)
        if iterator is not None:
            iterator._shutdown_workers()
            loop.dataloader._iterator = None


def _uninterrupted_and_resumed(
    tmp_path: Path, rng_hook: bool, sampler: str, kind: str, epochs: int = EPOCHS
):
    data = tmp_path / "data"

    def config(folder: str, name: str):
        return _config(
            tmp_path / folder, data, f"{kind}-{name}-{rng_hook}", rng_hook, sampler, kind, epochs
        )

    whole = _Record()
    _train(config("whole", "whole"), whole)
    killed, resumed = _Record(stop_after_epoch=1), _Record()
    _train(config("parts", "killed"), killed)
    assert (tmp_path / "parts" / "epoch_1.pth").is_file() and not killed.val
    cfg = config("parts", "resumed")
    cfg.resume = True
    _train(cfg, resumed)
    return whole, killed, resumed


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["finetune", "pretrain"])
def test_a_resumed_run_trains_exactly_as_an_uninterrupted_one(mm, tmp_path, kind):
    whole, killed, resumed = _uninterrupted_and_resumed(tmp_path, True, "EpochTaggedSampler", kind)
    per_epoch = len(killed.losses)
    assert per_epoch >= 2 and len(whole.losses) == EPOCHS * per_epoch
    assert min(resumed.losses) == per_epoch + 1  # it did resume after epoch 1
    assert killed.losses | resumed.losses == whole.losses  # every iteration, exactly
    if kind == "finetune":
        assert len(whole.val) == EPOCHS and len(resumed.val) == EPOCHS - 1
        assert resumed.val[-1] == whole.val[-1]
        assert "acc/top1" in whole.val[-1]


@pytest.mark.slow
def test_without_the_fix_a_resumed_run_drifts(mm, tmp_path):
    # The control: what issue 17 saw, so the test above can tell exact from inexact. Only the
    # first resumed step matters here: one epoch after the stop is enough.
    whole, killed, resumed = _uninterrupted_and_resumed(
        tmp_path, False, "DefaultSampler", "finetune", epochs=2
    )
    assert killed.losses == {i: whole.losses[i] for i in killed.losses}  # same until the stop
    first = min(resumed.losses)
    assert resumed.losses[first] != whole.losses[first]  # drifts from the first resumed step
