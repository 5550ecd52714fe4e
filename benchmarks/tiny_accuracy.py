"""How well, and how fast, the tiny fine-tuning configs learn the embedded motion dataset.

Trains each run with MMAction2's unchanged ``tools/train.py``, tests its last checkpoint with
``tools/test.py``, and prints validation top-1 (last epoch), test top-1 and wall times::

    python benchmarks/tiny_accuracy.py                   # every run below, one after another
    python benchmarks/tiny_accuracy.py full mats-0.6     # some of them
    python benchmarks/tiny_accuracy.py mats-0.3 --epochs 150 --work-dir work_dirs/long

Runs (``RUNS``): ``full`` (all tokens), ``mats-0.6`` (the MATS config), ``mats-0.3``, and the
static control (every frame of a clip frozen at one frame of its motion, so no motion is
left): ``static`` trains the full-token recipe on it as it is (temporal centring turns every
clip into zeros), ``static-raw`` without temporal centring and without the label-mapping
flips, i.e. a plain classifier of single frames. The controls must stay near chance (0.1,
ten classes).

Results go to ``<work-dir>/<run>/`` (MMEngine's logs, checkpoints) and ``<work-dir>/
results.json``. Timings are wall-clock on whatever else the machine is doing; the dataset is
built before the clock starts. No torch or mm* import here: everything runs in subprocesses.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mats_lab.lab.mmtools import test_command, train_command  # noqa: E402

CONFIGS = REPO / "mm_configs"
FULL = CONFIGS / "videomae_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
MATS = CONFIGS / "mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
STATIC = CONFIGS / "videomae_vit-tiny-p8_finetune_8x4x1_motion-synth-static.py"

# The four label-mapping flips sit at positions 3-6 of the tiny train pipeline (after
# decoding); `static-raw` turns each into a no-op (flip_ratio 0) rather than restating the
# pipeline.
_NO_FLIPS = {f"train_dataloader.dataset.pipeline.{i}.flip_ratio": 0.0 for i in (3, 4, 5, 6)}

RUNS: dict[str, tuple[Path, dict[str, object]]] = {
    "full": (FULL, {}),
    "mats-0.6": (MATS, {}),
    "mats-0.3": (MATS, {"model.backbone.keep_ratio": 0.3}),
    "static": (STATIC, {}),
    "static-raw": (STATIC, {"model.backbone.temporal_center": False, **_NO_FLIPS}),
}


@dataclass
class Result:
    run: str
    config: str
    overrides: dict[str, object] = field(default_factory=dict)
    val_top1: float | None = None
    test_top1: float | None = None
    train_s: float = 0.0
    test_s: float = 0.0


def _call(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` with its output in ``log``; return the wall time; exit on failure."""
    start = time.monotonic()
    with log.open("w") as out:
        code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    if code:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        sys.exit(f"{' '.join(cmd[:3])} ... exited with {code}; end of {log}:\n{tail}")
    return time.monotonic() - start


def _last_val_top1(work: Path) -> float | None:
    """``acc/top1`` of the last validation in the training run's ``scalars.json``."""
    last = None
    for path in sorted(work.glob("*/vis_data/scalars.json")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "acc/top1" in record:
                last = float(record["acc/top1"])
    return last


def _test_top1(test_dir: Path) -> float:
    """``acc/top1`` that ``tools/test.py`` logged (``<timestamp>/<timestamp>.json``)."""
    logs = sorted(test_dir.glob("*/*.json"))
    return float(json.loads(logs[-1].read_text().strip().splitlines()[-1])["acc/top1"])


def build_data(config: Path) -> None:
    """Build the config's dataset (all splits) before any clock starts."""
    code = (
        "import sys; from mmengine.registry import init_default_scope; import mats_lab.mm; "
        "from mmaction.registry import DATASETS; from mats_lab.trial.configs import load_config; "
        "init_default_scope('mmaction'); cfg = load_config(sys.argv[1], {}); "
        "DATASETS.build(cfg.train_dataloader.dataset)"
    )
    subprocess.run([sys.executable, "-c", code, str(config)], check=True, cwd=REPO)


def epoch_overrides(epochs: int) -> dict[str, object]:
    """Train for ``epochs`` epochs, cosine schedule stretched to match (5 warm-up epochs)."""
    return {
        "train_cfg.max_epochs": epochs,
        "param_scheduler.1.T_max": epochs - 5,
        "param_scheduler.1.end": epochs,
    }


def run_one(name: str, work_dir: Path, epochs: int | None = None) -> Result:
    config, overrides = RUNS[name]
    if epochs is not None:
        overrides = {**overrides, **epoch_overrides(epochs)}
    result = Result(name, config.name, dict(overrides))
    work = work_dir / name
    work.mkdir(parents=True, exist_ok=True)
    build_data(config)
    result.train_s = _call(train_command(config, work, cfg_options=overrides), work / "train.log")
    result.val_top1 = _last_val_top1(work)
    checkpoint = Path((work / "last_checkpoint").read_text().strip())
    test_dir = work / "test"
    result.test_s = _call(
        test_command(config, checkpoint, test_dir, cfg_options=overrides), work / "test.log"
    )
    result.test_top1 = _test_top1(test_dir)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", help=f"any of {', '.join(RUNS)} (default: all)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "work_dirs" / "tiny_accuracy")
    parser.add_argument("--epochs", type=int, help="train this many epochs (default: config's)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs <= 5:
        parser.error("--epochs must exceed the 5 warm-up epochs")
    unknown = sorted(set(args.runs) - set(RUNS))
    if unknown:
        parser.error(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    names = args.runs or list(RUNS)
    results = []
    print(f"{'run':<11} {'val top-1':>9} {'test top-1':>10} {'train s':>8} {'test s':>7}")
    for name in names:
        r = run_one(name, args.work_dir, args.epochs)
        results.append(r)
        val = "-" if r.val_top1 is None else f"{r.val_top1:.3f}"
        print(
            f"{r.run:<11} {val:>9} {r.test_top1:>10.3f} {r.train_s:>8.0f} {r.test_s:>7.0f}",
            flush=True,
        )
    out = args.work_dir / "results.json"
    out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
