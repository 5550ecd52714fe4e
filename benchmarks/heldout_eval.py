"""Evaluate a finished study's fine-tuned models again on many fresh clips, and write a trial
table that ``mats-lab report --trials`` reads, so that a study's verdicts can be drawn from a
test set far larger than the embedded dataset's 100 clips, without training anything again.

Why: the embedded dataset tests on 100 clips, one standard error of about 4 points of
accuracy at 80 % top-1, as large as the seed-to-seed spread of a configuration. How much of
the disagreement between two runs of a study is that evaluation noise, and how much is
training? Evaluating the same final checkpoints on 10x more clips answers it.

The fresh clips are the validation and test splits of the embedded dataset generated with
other seeds (``--synth-seeds``, default 1-5: 1000 clips, none of them in the seed-0 dataset
the study trained and tested on); the clips of every seed come from the same generator, so
they are the same distribution. For every COMPLETE trial of ``--trials`` (a report's
``trials.csv``), the study plan (:func:`mats_lab.lab.space.plan_stages`, with ``--root`` the
checkout the study ran in: a store from before stage keys were portable is found under the
old keys, which carry the config's absolute path) names its tested stage; that stage's last
checkpoint goes through its own config's test pipeline and ``AccMetric`` (an MMEngine
``Runner.test``, data loading in the process). The table written to ``OUT/trials.csv`` is
the input table with ``metrics.test/acc/top1`` and ``top5`` replaced by the held-out ones
(the input's are kept as ``metrics.test100/acc/*``)::

    OMP_NUM_THREADS=1 python benchmarks/heldout_eval.py studies/keep_ratio_factorial.yaml \\
        --trials reports/keep_ratio_factorial_amd/trials.csv --root /work/x1 --out /tmp/h0
    mats-lab report studies/keep_ratio_factorial.yaml --trials /tmp/h0 --out /tmp/h0/report

A stage folder or checkpoint that is missing stops the script (exit 2) naming the trial,
before anything is evaluated. ``--check`` first evaluates the first trial on the study's own
100 test clips and stops unless that reproduces its recorded test top-1 (the same checkpoint
and pipeline as the study's test).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import typer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mats_lab.data.synth import ensure_dataset  # noqa: E402
from mats_lab.lab.space import grid_points, plan_stages  # noqa: E402
from mats_lab.protocol.layout import StageFiles, stage_dir, stage_root  # noqa: E402
from mats_lab.protocol.spec import load_study, study_paths  # noqa: E402

app = typer.Typer(add_completion=False)


class HeldoutError(Exception):
    """A trial whose stage or checkpoint cannot be found; the message names it."""


def held_out_list(data: Path, seeds: list[int], out: Path, size: str) -> tuple[Path, int]:
    """Build the embedded dataset (preset ``size``) for every seed under ``data`` and write one
    annotation list of their val and test clips (absolute paths) to ``out``; returns it and
    the clip count."""
    lines = []
    for seed in seeds:
        root = ensure_dataset(data / f"motion_synth_{size}_seed{seed}", seed=seed, size=size)
        for split in ("val", "test"):
            lines += absolute_lines(root / f"{split}_list_videos.txt", root)
    out.write_text("".join(lines))
    return out, len(lines)


def absolute_lines(ann_file: Path, prefix: Path) -> list[str]:
    """The lines of the annotation list ``ann_file`` (``name label``) with every video name
    joined to ``prefix``, each ending in a newline."""
    lines = Path(ann_file).read_text().splitlines()
    return [f"{prefix / n} {label}\n" for n, label in (x.rsplit(" ", 1) for x in lines)]


def tested_stages(study: Path, root: Path, trials: pd.DataFrame) -> dict[int, Path]:
    """``{row index of trials: stage folder}`` for every COMPLETE trial: the folder of the
    last tested stage of its grid point and seed. ``study``: the study file in ``root``."""
    spec = load_study(study)
    folder, _ = study_paths(spec, study)
    stages = stage_root(study, folder, spec.stage_store)
    variables = list(spec.space)
    by_point: dict[tuple, Path] = {}
    for point in grid_points(spec):
        plans = [p for p in plan_stages(spec, point, root) if p.test]
        if plans:
            key = (*(str(point.params[v]) for v in variables), int(point.seed))
            plan = plans[-1]
            folder = stage_dir(stages, plan.key)
            if plan.legacy_key and not folder.exists():  # stored before keys were portable
                folder = stage_dir(stages, plan.legacy_key)
            by_point[key] = folder
    found = {}
    for index, row in trials[trials["state"] == "COMPLETE"].iterrows():
        key = (*(str(row[f"params.{v}"]) for v in variables), int(row["seed"]))
        where = f"trial {row['trial']} ({', '.join(map(str, key))})"
        if key not in by_point:
            raise HeldoutError(f"{where}: not a grid point of {study}")
        stage = by_point[key]
        if StageFiles(stage).checkpoint() is None:
            raise HeldoutError(f"{where}: no finished stage at {stage} (is --root right?)")
        found[index] = stage
    return found


def own_test_list(stage: Path, out: Path) -> Path:
    """Write ``stage``'s own test list (its dataset built if missing) with absolute paths to
    ``out``, for :func:`evaluate`; returns ``out``."""
    from mmengine.config import Config

    dataset = Config.fromfile(str(stage / "config.py")).test_dataloader.dataset
    ensure_dataset(dataset.synth_root, seed=dataset.synth_seed, size=dataset.synth_size)
    out.write_text("".join(absolute_lines(dataset.ann_file, Path(dataset.data_prefix["video"]))))
    return out


def synth_of(stage: Path) -> tuple[str, int]:
    """The embedded dataset preset and seed ``stage``'s test split was drawn from."""
    from mmengine.config import Config

    dataset = Config.fromfile(str(stage / "config.py")).test_dataloader.dataset
    return str(dataset.synth_size), int(dataset.synth_seed)


def evaluate(stage: Path, ann_file: Path, work: Path) -> dict[str, float]:
    """Top-1 and top-5 of ``stage``'s last checkpoint on ``ann_file`` (absolute paths)."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(stage / "config.py"))
    cfg.work_dir = str(work)
    cfg.load_from = StageFiles(stage).checkpoint()  # where it is now, if the folder moved
    cfg.resume = False
    cfg.custom_hooks = []
    cfg.log_level = "WARNING"
    loader = cfg.test_dataloader
    loader.num_workers = 0
    loader.persistent_workers = False
    loader.batch_size = 50
    loader.dataset.ann_file = str(ann_file)
    loader.dataset.data_prefix = dict(video="")
    loader.dataset.decoded_cache = False
    metrics = Runner.from_cfg(cfg).test()
    return {"top1": float(metrics["acc/top1"]), "top5": float(metrics["acc/top5"])}


@app.command()
def main(
    study: Path,
    trials: Path = typer.Option(..., help="a report's trials.csv"),
    out: Path = typer.Option(..., help="folder for trials.csv and the generated clips"),
    root: Path = typer.Option(REPO, help="the checkout the study ran in"),
    synth_seeds: list[int] = typer.Option([1, 2, 3, 4, 5], help="datasets of fresh clips"),
    check: bool = typer.Option(True, help="first reproduce one recorded test top-1"),
) -> None:
    table = pd.read_csv(trials)
    try:
        here = study.resolve()
        inside = here.relative_to(REPO) if here.is_relative_to(REPO) else study
        stages = tested_stages((root / inside).resolve(), root.resolve(), table)
    except HeldoutError as exc:
        typer.echo(f"heldout_eval: {exc}", err=True)
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    size, own_seed = synth_of(next(iter(stages.values())))
    if own_seed in synth_seeds:
        typer.echo(f"heldout_eval: synth seed {own_seed} is the study's own dataset", err=True)
        raise typer.Exit(2)
    ann, clips = held_out_list(out / "data", synth_seeds, out / "heldout_list_videos.txt", size)
    typer.echo(f"{len(stages)} trials, {clips} held-out '{size}' clips (seeds {synth_seeds})")
    if check:
        index, stage = next(iter(stages.items()))
        own = json.loads((stage / "stage.json").read_text())
        with tempfile.TemporaryDirectory() as work:
            listed = own_test_list(stage, Path(work) / "own_list.txt")
            again = evaluate(stage, listed, Path(work))["top1"]
        recorded = float(table.loc[index, "metrics.test/acc/top1"])
        typer.echo(f"check: trial {table.loc[index, 'trial']} (seed {own['seed']}) test top-1 "
                   f"recorded {recorded:.4f}, again {again:.4f}")  # fmt: skip
        if abs(again - recorded) > 1e-6:
            typer.echo("heldout_eval: the check did not reproduce the recorded test", err=True)
            raise typer.Exit(1)
    result = table.copy()
    for metric in ("top1", "top5"):
        result[f"metrics.test100/acc/{metric}"] = result[f"metrics.test/acc/{metric}"]
    for n, (index, stage) in enumerate(stages.items(), 1):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as work:
            acc = evaluate(stage, ann, Path(work))
        for metric, value in acc.items():
            result.loc[index, f"metrics.test/acc/{metric}"] = value
        row = result.loc[index]
        typer.echo(
            f"[{n}/{len(stages)}] trial {row['trial']} seed {row['seed']} "
            f"{stage.name}: held-out top-1 {acc['top1']:.4f} "
            f"(test-100 {row['metrics.test100/acc/top1']:.2f}) {time.perf_counter() - start:.0f} s"
        )
    result.to_csv(out / "trials.csv", index=False)  # only whole: no table mixes test sets


if __name__ == "__main__":
    app()
