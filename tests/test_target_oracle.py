"""The target-predictability oracles (benchmarks/target_oracle.py): on constructed clips whose
answers are known, each oracle scores what it should (an exact copy 1, a sign-flipped copy
-3 raw and 1 scaled, nothing to explain NaN), the subspace bound is exact on low-rank targets,
and the script runs on a generated dataset and refuses a missing one."""

from __future__ import annotations

import json
import math

import pytest
import torch
from benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def oracle():
    return load_benchmark("target_oracle")


def _pattern(generator: torch.Generator, t: int = 2, p: int = 8) -> torch.Tensor:
    return torch.rand(1, 3, t, p, p, generator=generator)  # one tubelet's pixels


def test_a_still_clip_is_copied_exactly_in_time_and_has_nothing_to_explain_centred(oracle):
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(1, 3, 1, 16, 16, generator=g)
    video = frame.expand(2, 3, 8, 16, 16).clone()  # 8 identical frames
    as_given = oracle.score(video, oracle.Setting(2, 8, False))
    assert as_given["previous"] == pytest.approx((1.0, 1.0))
    assert as_given["interpolate"] == pytest.approx((1.0, 1.0))
    centred = oracle.score(video, oracle.Setting(2, 8, True))
    assert all(math.isnan(raw) and math.isnan(scaled) for raw, scaled in centred.values())


def test_a_sign_flipped_copy_reads_minus_three_raw_and_one_scaled(oracle):
    g = torch.Generator().manual_seed(1)
    tubelet = _pattern(g, t=2, p=16)  # (1, 3, 2, 16, 16)
    video = torch.cat([tubelet, -tubelet], dim=2)  # 2 tubelets, the second the first negated
    raw, scaled = oracle.score(video, oracle.Setting(2, 16, False))["previous"]
    # normalising per tubelet keeps the flip: prediction -t for target t, error (2t)^2
    assert raw == pytest.approx(-3.0, abs=1e-9)
    assert scaled == pytest.approx(1.0, abs=1e-9)
    assert "interpolate" not in oracle.score(video, oracle.Setting(2, 16, False))
    with pytest.raises(ValueError, match="3 tubelets"):
        oracle.oracle_predictions(oracle.target_grid(video, oracle.Setting(2, 16, False)),
                                  "interpolate")  # fmt: skip


def test_space_copies_a_tiled_pattern_and_nothing_from_independent_tokens(oracle):
    g = torch.Generator().manual_seed(2)
    tiled = _pattern(g).repeat(1, 1, 1, 4, 4)  # (1, 3, 2, 32, 32): every token the same
    raw, scaled = oracle.score(tiled, oracle.Setting(2, 8, False))["space"]
    assert raw == pytest.approx(1.0) and scaled == pytest.approx(1.0)
    noise = torch.rand(8, 3, 2, 32, 32, generator=g)  # every pixel independent
    raw, scaled = oracle.score(noise, oracle.Setting(2, 8, False))["space"]
    assert raw < 0 and scaled < 0.01


def test_the_subspace_bound_is_exact_on_low_rank_targets(oracle):
    g = torch.Generator().manual_seed(3)
    basis = torch.randn(2, 50, generator=g)
    coefficients = torch.randn(400, 2, generator=g)
    targets = coefficients @ basis  # (400, 50), rank 2
    assert oracle.subspace_share(targets, 2) == pytest.approx(1.0)
    assert oracle.subspace_share(targets, 50) == pytest.approx(1.0)
    one = oracle.subspace_share(targets, 1)
    assert 0.0 < one < 1.0
    # one direction of two equal-energy independent ones: about half
    assert oracle.subspace_share(torch.randn(4000, 2, generator=g), 1) == pytest.approx(
        0.5, abs=0.05
    )
    assert math.isnan(oracle.subspace_share(torch.zeros(5, 4), 1))


def test_unknown_oracle_is_refused(oracle):
    grid = torch.zeros(1, 2, 2, 2, 4)
    with pytest.raises(ValueError, match="oracle must be one of"):
        oracle.oracle_predictions(grid, "future")


def test_the_script_scores_a_generated_dataset_and_refuses_a_missing_one(
    oracle, tmp_path, capsys
) -> None:
    from mats_lab.data import synth

    root = synth.ensure_dataset(tmp_path / "ms", seed=0, size="tiny")  # 8 frames of 32x32
    out = tmp_path / "oracle.json"
    code = oracle.main(
        ["--root", str(root), "--clips", "4", "--interval", "1", "--rank", "8", "--json", str(out)]
    )
    assert code == 0
    figures = json.loads(out.read_text())
    study = figures["tubelet 4, patch 16, as given"]
    assert set(study) == {"previous", "space", "rank-8 bound"}
    assert 0.0 <= study["previous"][1] <= 1.0 and 0.0 < study["rank-8 bound"] <= 1.0
    assert "interpolate" in figures["tubelet 2, patch 8, centred"]
    assert "rank-8 bound" in capsys.readouterr().out
    assert oracle.main(["--root", str(tmp_path / "nowhere")]) == 2
    assert "no dataset" in capsys.readouterr().err
