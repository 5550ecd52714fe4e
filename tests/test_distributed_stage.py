"""A stage on 2 ranks: torch's launcher, gloo on CPU, one set of records, identical weights,
a rank failure fails the stage with its traceback. (A SIGKILLed two-rank stage stops every
rank and resumes exactly on both: tests/test_distributed_sweep.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mats_lab.protocol.records import StageSpec, read_result, write_stage_spec

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
PRETRAIN = REPO / "mm_configs/mats_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"


def tiny_data(root: Path) -> dict:
    """The tiny synthetic preset (8 training clips): batch 4 on each of 2 ranks is one step
    per epoch."""
    key = "train_dataloader"
    return {
        f"{key}.dataset.synth_root": str(root),
        f"{key}.dataset.synth_size": "tiny",
        f"{key}.dataset.ann_file": str(root / "train_list_videos.txt"),
        f"{key}.dataset.data_prefix.video": str(root),
        f"{key}.batch_size": 4,
        f"{key}.num_workers": 0,
        f"{key}.persistent_workers": False,
    }


def write_spec(tmp_path: Path, epochs: int, **extra) -> Path:
    spec = StageSpec(
        config=str(PRETRAIN),
        overrides={**tiny_data(tmp_path / "data"), **extra.pop("overrides", {})},
        knobs={"epochs": epochs},
        work_dir=str(tmp_path / "stage"),
        nprocs=2,
        cpu_threads=1,
        **extra,
    )
    path = tmp_path / "stage.json"
    write_stage_spec(path, spec)
    return path


def start(spec: Path, log: Path) -> subprocess.Popen:
    """Start the stage as the sweep does: its own process group, output to the stage log."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK")}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mats_lab.trial.stage_run", "--spec", str(spec)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )


def ranks_record(work_dir: Path) -> dict:
    return json.loads((work_dir / "ranks.json").read_text())


def test_two_gloo_ranks_train_one_step_with_identical_weights(tmp_path):
    spec = write_spec(tmp_path, epochs=1)
    log = tmp_path / "stage.log"
    proc = start(spec, log)
    assert proc.wait(timeout=600) == 0, log.read_text()[-4000:]
    work_dir = tmp_path / "stage"
    text = log.read_text()
    assert "torch.distributed.run" in text and "--nproc-per-node 2" in text
    assert "Distributed training: True" in text and "'backend': 'gloo'" in text
    record = ranks_record(work_dir)
    assert record["world_size"] == 2 and record["iter"] == 1  # one optimizer step
    first, second = record["digests"]
    assert first == second
    result = read_result(work_dir)
    assert result is not None and result.nprocs == 2
    assert result.cost["train_gmacs"] > 0
    resolved = json.loads((work_dir / "resolved.json").read_text())
    assert resolved["nprocs"] == 2 and resolved["lr"]["total_batch"] == 8
    progress = (work_dir / "progress.jsonl").read_text().splitlines()
    assert len([p for p in progress if '"train"' in p]) == 1  # rank 0 alone writes


def test_a_failing_rank_fails_the_stage_with_its_traceback(tmp_path):
    # A visible ratio above the candidate ratio is refused when the model is built, on each
    # rank, after the launcher has started them.
    spec = write_spec(tmp_path, epochs=1, overrides={"model.visible_ratio": 0.9})
    log = tmp_path / "stage.log"
    proc = start(spec, log)
    code = proc.wait(timeout=600)
    tail = "\n".join(log.read_text().splitlines()[-60:])
    assert code != 0
    assert "visible_ratio" in tail and "Traceback" in tail, tail
    assert not (tmp_path / "stage" / "result.json").exists()


def test_a_config_error_is_caught_before_any_rank_starts(tmp_path):
    spec = write_spec(tmp_path, epochs=1, overrides={"model.backbone.no_such_key.x": 1})
    log = tmp_path / "stage.log"
    proc = start(spec, log)
    assert proc.wait(timeout=300) == 3  # CONFIG_ERROR, not the launcher's 1
    text = log.read_text()
    assert "no_such_key" in text and "torch.distributed.run" not in text


def test_the_stores_listen_on_loopback_only():
    from mats_lab.trial.distributed import loopback_store

    store = loopback_store(0, None, is_master=True)
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == store.port:
                listening.append(local.split(":")[0])
    assert listening == ["0100007F"], listening  # 127.0.0.1, and nothing else


def test_rank_config_on_cpu_and_cuda():
    from mmengine.config import Config

    from mats_lab.trial.distributed import rank_config

    cpu = Config(dict(env_cfg=dict(dist_cfg=dict(backend="nccl"))))
    rank_config(cpu, cuda=False)
    assert cpu.launcher == "pytorch" and cpu.env_cfg.dist_cfg.backend == "gloo"
    assert cpu.model_wrapper_cfg.device_ids is None
    assert cpu.model_wrapper_cfg.broadcast_buffers is False

    gpu = Config(dict(env_cfg=dict(dist_cfg=dict(backend="nccl"))))
    rank_config(gpu, cuda=True)
    assert gpu.env_cfg.dist_cfg.backend == "nccl"
    assert gpu.get("model_wrapper_cfg") is None  # MMEngine's default: device_ids=[LOCAL_RANK]


def test_launcher_command_is_torchs_on_loopback():
    from mats_lab.trial.distributed import launcher_command

    cmd = launcher_command("S.json", 4, 1234)
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert "127.0.0.1:1234" in cmd and cmd[cmd.index("--nproc-per-node") + 1] == "4"
    with pytest.raises(ValueError, match="nprocs >= 2"):
        launcher_command("S.json", 1, 1234)
