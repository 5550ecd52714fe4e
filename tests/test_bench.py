"""``mats-lab bench``: the structure and invariants of its figures at a micro size (no timed
assertions: times on a shared CPU say nothing in a unit test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

RATIO_KEYS = (
    "pretrain_time_ratio",
    "pretrain_macs_ratio",
    "pretrain_memory_ratio",
    "finetune_time_ratio",
    "finetune_macs_ratio",
    "finetune_memory_ratio",
    "selection_share",
)
MICRO = dict(model="tiny", frames=4, size=32, batch=2, warmup=1, repeats=2, memory_steps=1)


@pytest.fixture(scope="module")
def result(mm):
    from mats_lab.trial.bench import BenchSpec, run_bench

    return run_bench(BenchSpec(**MICRO), memory=False)


def test_figures_cover_the_four_workloads_with_counted_macs(result):
    from mats_lab.trial.bench import WORKLOADS

    assert set(result.workloads) == set(WORKLOADS)
    for fig in result.workloads.values():
        assert len(fig.step_s) == len(fig.step_cpu_s) == 2 and all(t > 0 for t in fig.step_s)
        assert fig.train_gmacs > fig.forward_gmacs_per_clip * fig.batch > 0  # + backward
        assert fig.memory_mb is None
    w = result.workloads
    # N = 2 tubelets x 16 = 32 tokens: MATS keeps int(0.3 N) = 9, shows int(0.1 N) = 3;
    # tube masking shows 16 - int(0.9 * 16) = 2 per tubelet
    assert w["mats_pretrain"].tokens == {"all": 32, "encoder": 3, "targets": 6, "decoder": 9}
    assert w["videomae_pretrain"].tokens == {"all": 32, "encoder": 4, "targets": 28, "decoder": 32}
    assert w["mats_finetune"].tokens == {"all": 32, "encoder": 19}
    r = result.ratios()
    assert r["pretrain_macs_ratio"] == pytest.approx(
        w["mats_pretrain"].train_gmacs / w["videomae_pretrain"].train_gmacs
    )
    assert r["finetune_macs_ratio"] == pytest.approx(
        w["mats_finetune"].train_gmacs / w["full_finetune"].train_gmacs
    )
    assert 0 < r["pretrain_macs_ratio"] < 1 and 0 < r["finetune_macs_ratio"] < 1
    assert 0 < r["pretrain_saved_activations_ratio"] < 1


def test_selection_share_and_json_document(result):
    r = result.ratios()
    assert 0 < r["selection_share"] < 1
    assert r["selection_share"] == max(result.selection_shares().values())
    assert r["selection_share_cpu"] == max(result.selection_shares("cpu").values())
    assert r["pretrain_cpu_time_ratio"] == pytest.approx(
        result.workloads["mats_pretrain"].median_cpu_s
        / result.workloads["videomae_pretrain"].median_cpu_s
    )
    doc = json.loads(json.dumps(result.as_dict()))
    for key in RATIO_KEYS:
        assert key in doc
    assert doc["pretrain_memory_ratio"] is None  # not measured here
    assert doc["checks"]["pretrain_memory_at_most_0.75"] is None
    assert doc["workloads"]["mats_pretrain"]["median_s"] > 0
    assert doc["spec"]["frames"] == 4 and doc["environment"]["threads"] >= 1


def test_format_result_prints_every_workload(result):
    from mats_lab.trial.bench import format_result

    text = format_result(result)
    for name in result.workloads:
        assert name in text
    assert "selection" in text and "MACs" in text


def test_saved_activations_by_part(mm):
    from mats_lab.trial.bench import BenchSpec
    from mats_lab.trial.bench.memory import saved_activations
    from mats_lab.trial.bench.workloads import build_workload

    spec = BenchSpec(**MICRO).resolved()
    mats = saved_activations(build_workload(spec, "mats_pretrain"))
    tube = saved_activations(build_workload(spec, "videomae_pretrain"))
    assert mats["total"] == sum(v for k, v in mats.items() if k != "total")
    assert 0 < mats["decoder"] < tube["decoder"]  # 9 decoder tokens against 32
    clip = 2 * 3 * 4 * 32 * 32 * 4  # the input, stored by the patch embedding
    assert mats["encoder"] >= clip and tube["encoder"] >= clip


def test_child_measure_peak_is_state_plus_rise(mm):
    from mats_lab.trial.bench import BenchSpec
    from mats_lab.trial.bench.memory import child_measure

    figures = child_measure(BenchSpec(**MICRO).resolved(), "mats_finetune")
    assert figures["state"] > 0 and figures["activation_peak"] >= 0
    assert figures["peak"] == pytest.approx(figures["state"] + figures["activation_peak"])


def test_memory_is_measured_in_a_fresh_process(mm):
    from mats_lab.trial.bench import BenchSpec
    from mats_lab.trial.bench.memory import measure_peak_memory

    figures = measure_peak_memory(BenchSpec(**MICRO).resolved(), "mats_pretrain")
    assert figures["peak"] >= figures["state"] > 0
    assert "VmHWM" in figures["source"]


def test_spec_rejects_unknown_model_and_device():
    from mats_lab.trial.bench.spec import BenchSpec

    with pytest.raises(ValueError, match="model must be one of"):
        BenchSpec(model="huge")
    with pytest.raises(ValueError, match="device must be"):
        BenchSpec(device="tpu")
    spec = BenchSpec(model="small").resolved()
    assert (spec.frames, spec.size, spec.batch) == (16, 112, 4)
    assert BenchSpec.from_json(spec.to_json()) == spec


def test_selection_probe_times_the_span_inside_each_forward(mm):
    from mats_lab.trial.bench import BenchSpec
    from mats_lab.trial.bench.selection import SelectionProbe
    from mats_lab.trial.bench.workloads import build_workload

    spec = BenchSpec(**MICRO).resolved()
    with pytest.raises(ValueError, match="keeps every token"):
        SelectionProbe(build_workload(spec, "full_finetune").backbone)
    for name in ("mats_finetune", "mats_pretrain"):
        workload = build_workload(spec, name)
        with SelectionProbe(workload.backbone) as probe:
            workload.step()
            workload.step()
        workload.step()  # after the probe is gone: not recorded
        wall, cpu = probe.spans()
        assert len(wall) == len(cpu) == 2 and all(t > 0 for t in wall)


def test_cli_bench_writes_the_json_keys(mm, tmp_path):
    from typer.testing import CliRunner

    from mats_lab.cli.main import app

    out = tmp_path / "bench.json"
    args = ["bench", "--model", "tiny", "--frames", "4", "--size", "32", "--batch", "2"]
    args += ["--repeats", "1", "--warmup", "0", "--no-memory", "--no-pipeline"]
    done = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert done.exit_code == 0, done.output
    doc = json.loads(out.read_text())
    assert all(key in doc for key in RATIO_KEYS)
    assert "mats_pretrain" in done.output


def test_cli_bench_rejects_a_bad_model():
    from typer.testing import CliRunner

    from mats_lab.cli.main import app

    done = CliRunner().invoke(app, ["bench", "--model", "huge"])
    assert done.exit_code == 2
    assert "model must be one of" in done.output


def test_count_train_macs_counts_backward(mm):
    from mats_lab.trial.flops import count_macs, count_train_macs

    layer = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    forward = count_macs(lambda: layer(x).sum())
    assert forward == pytest.approx(3 * 8 * 4 / 1e9)
    # backward: weight gradient only (x needs no gradient): as many MACs again
    assert count_train_macs(lambda: layer(x).sum()) == pytest.approx(2 * forward)


def test_one_pair_leaves_the_other_ratios_empty(mm):
    from mats_lab.trial.bench import BenchSpec, run_bench

    spec = BenchSpec(**dict(MICRO, repeats=1, warmup=0), pairs=("pretrain",))
    result = run_bench(spec, memory=False)
    r = result.ratios()
    assert set(result.workloads) == {"videomae_pretrain", "mats_pretrain"}
    assert r["finetune_time_ratio"] is None and r["pretrain_time_ratio"] is not None
    assert result.checks()["finetune_time_within_1.1x_macs"] is None
    with pytest.raises(ValueError, match="pairs must be among"):
        BenchSpec(pairs=("inference",))


@pytest.mark.slow
def test_gpu_check_script_runs_on_cpu(tmp_path):
    """``benchmarks/gpu_check.sh OUT --cpu-dry-run``: the GPU check's code paths (the 2-trial
    sweep through the stage runner, the bf16 step pairs, the table and JSON) on the CPU."""
    import json
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "gc"
    proc = subprocess.run(
        [str(repo / "benchmarks" / "gpu_check.sh"), str(out), "--cpu-dry-run", "--repeats", "2"],
        capture_output=True,
        text=True,
        cwd=repo,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["sweep"]["ok"] and len(report["sweep"]["stages"]) == 2
    gmacs = sorted(s["train_gmacs"] for s in report["sweep"]["stages"])
    assert gmacs[0] < gmacs[1]  # keep 0.6 costs less than keep 1.0
    for pair in ("pretrain", "finetune"):
        assert 0 < report["steps"][f"{pair}_macs_ratio"] < 1
        assert report["steps"][f"{pair}_time_ratio"] > 0
    assert "steps (bf16): MATS / baseline" in proc.stdout
