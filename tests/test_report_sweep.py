"""``mats-lab report`` after a real (fake-trial) sweep: every format written, the Markdown
numbers equal to MLflow's run data, the same trials read from MLflow and from Optuna, the
Optuna-only fallback, failed trials listed, discovery of the local store, ``--compare``, the
token picture's subprocess, and no torch in the report's process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mats_lab.cli.main import app
from mats_lab.lab.sweep import Sweep, SweepOptions
from mats_lab.protocol.spec import load_study
from mats_lab.report.collect import TRIAL_COLUMNS, collect
from mats_lab.report.sources import resolve
from mats_lab.report.summarise import summarise
from mats_lab.report.tables import fmt_number
from mats_lab.report.tokens import token_picture

FAKE = [sys.executable, "-m", "mats_lab.lab.fake_stage"]
PRE = "mm_configs/{recipe}_vit-tiny-p8_pretrain_8x4x1_motion-synth.py"
FT = "mm_configs/{recipe}_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
QUICK = {"fake.duration": 0.05}


def keep_ratio_study() -> dict:
    """studies/keep_ratio.yaml with the fake trial command, two seeds and a broken method."""
    return {
        "name": "keep_ratio",
        "stages": [
            {"name": "pretrain", "config": PRE, "overrides": QUICK | {"fake.machine": "box-a"}},
            {
                "name": "finetune",
                "config": FT,
                "load_from": "pretrain",
                "test": True,
                # as if the fine-tunings ran on another machine than the pre-trainings
                "overrides": QUICK | {"fake.machine": "box-b"},
            },
        ],
        "space": {
            "method": {
                "stages": ["finetune"],
                "grid": [
                    {"label": "videomae", "recipe": "videomae", "keep_ratio": 1.0},
                    {"label": "mats-0.6", "recipe": "mats", "keep_ratio": 0.6},
                    {"label": "mats-0.3", "recipe": "mats", "keep_ratio": 0.3},
                    {"label": "broken", "recipe": "mats", "keep_ratio": 0.45, "fake.fail_times": 9},
                ],
            }
        },
        "seeds": [0, 1],
        "retries": 0,
        "resources": {"devices": 2},
        "command": FAKE,
    }


def small_study() -> dict:
    return {
        "name": "small",
        "stages": [
            {
                "name": "finetune",
                "config": FT.format(recipe="mats"),
                "test": True,
                "overrides": QUICK,
            }
        ],
        "space": {"keep_ratio": {"grid": [0.5, 1.0]}},
        "resources": {"devices": 2},
        "command": FAKE,
    }


def test_trials_from_two_machines_are_named_and_noted(store, tmp_path):
    """Each trial's machine (what its stages recorded) reaches MLflow, Optuna and trials.csv;
    a report whose trials ran on two machines says so, one from one machine does not."""
    source = resolve(str(study_file(store)), store)
    for use_mlflow in (True, False):
        trials = collect(source, use_mlflow=use_mlflow).trials
        done = trials[trials["state"] == "COMPLETE"]
        assert set(done["machine"]) == {"box-a; box-b"}, done[["trial", "machine"]].to_string()
    out = invoke(str(study_file(store)), "--out", str(tmp_path))
    assert "the trials ran on 2 machines (box-a / box-b)" in out
    csv = pd.read_csv(tmp_path / "keep_ratio" / "trials.csv")
    assert set(csv[csv["state"] == "COMPLETE"]["machine"]) == {"box-a; box-b"}
    assert set(csv[csv["state"] == "FAIL"]["machine"]) == {"box-a"}  # its pre-training's
    small = invoke(str(store / "studies" / "small.yaml"), "--out", str(tmp_path / "small"))
    assert "the trials ran on" not in small


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/studies/{keep_ratio,small}.yaml`` swept; returns the root."""
    root = tmp_path_factory.mktemp("report_store")
    here = os.getcwd()
    os.chdir(root)  # MLflow puts artifacts of a sqlite store under ./mlruns
    try:
        for data in (keep_ratio_study(), small_study()):
            path = root / "studies" / f"{data['name']}.yaml"
            path.parent.mkdir(exist_ok=True)
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            Sweep(load_study(path), path, SweepOptions(out=io.StringIO(), poll=0.05)).run()
    finally:
        os.chdir(here)
    return root


def study_file(store: Path) -> Path:
    return store / "studies" / "keep_ratio.yaml"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, ["report", *args])
    assert result.exit_code == 0, result.output
    return result.output


def md_table(path: Path) -> pd.DataFrame:
    lines = [
        line for line in path.read_text().splitlines() if line.startswith("|") and "---" not in line
    ]
    rows = [[c.strip().replace("**", "") for c in line.strip("|").split(" | ")] for line in lines]
    return pd.DataFrame(rows[1:], columns=rows[0]).set_index(rows[0][0])


def mlflow_children(store: Path, name: str = "keep_ratio") -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{store / 'studies' / 'runs' / name / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=[name])
    return runs[runs["tags.mats_lab.trial"].notna()]


def test_report_writes_every_format_and_prints_the_table(store, tmp_path):
    out = invoke(str(study_file(store)), "--out", str(tmp_path))
    folder = tmp_path / "keep_ratio"
    for name in (
        "results.md",
        "results.csv",
        "results.tex",
        "results.html",
        "index.md",
        "index.html",
        "trials.csv",
    ):
        assert (folder / name).stat().st_size > 0, name
    for stem in ("acc_vs_gmacs", "acc_vs_keep_ratio", "curves"):
        assert (folder / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert (folder / f"{stem}.svg").is_file()
    assert "study keep_ratio: 8 trials: 6 complete, 2 failed" in out and "(from MLflow)" in out
    shown = [" ".join(line.split()) for line in out.splitlines()]  # cells padded by tabulate
    assert "| videomae (baseline) | videomae | 1.0 | 2 |" in "\n".join(shown)  # in the terminal
    index = (folder / "index.md").read_text()
    for link in ("results.csv", "results.tex", "results.html", "acc_vs_gmacs.png", "curves.png"):
        assert f"({link})" in index
    assert "Not drawn: trial" in index and "a fake trial?" in index  # no model to show tokens of
    assert "`mats-lab report " in index and "--out" in index  # the command that produced it
    assert '<img src="acc_vs_gmacs.png"' in (folder / "index.html").read_text()


def test_markdown_numbers_match_mlflow_run_data(store, tmp_path):
    invoke(str(study_file(store)), "--out", str(tmp_path), "--no-tokens")
    table = md_table(tmp_path / "keep_ratio" / "results.md")
    runs = mlflow_children(store)
    done = runs[runs["tags.state"] == "COMPLETE"]
    assert len(done) == 6
    for method, group in done.groupby("params.method"):
        row = table.loc[f"{method} (baseline)" if method == "videomae" else method]
        assert row["seeds"] == str(len(group))
        top1 = group["metrics.test/acc/top1"]
        assert row["test top-1 (%)"].split(" ")[0] == f"{100 * top1.mean():.1f}"
        assert row["test top-1 (%)"].split(" ")[2] == f"{100 * top1.std():.1f}"
        pre = group["metrics.pretrain/train_gmacs"].mean()
        assert row["pre-train GMACs/clip"].split(" ")[0] == fmt_number(pre)
        fine = group["metrics.test_gmacs"].mean()
        assert row["fine-tune GMACs/view"].split(" ")[0] == fmt_number(fine)
        assert row["wall time (s)"].split(" ")[0] == fmt_number(group["metrics.wall_time_s"].mean())
    assert "broken" not in table.index  # both its trials failed: no row
    csv = pd.read_csv(tmp_path / "keep_ratio" / "results.csv", index_col=0)
    expected = done.groupby("params.method")["metrics.val/acc/top1"].mean()
    for method, value in expected.items():
        assert csv.loc[method, "val/acc/top1.mean"] == pytest.approx(value, abs=1e-12)


def test_mlflow_and_optuna_give_the_same_trial_frame(store):
    source = resolve(str(study_file(store)), store)
    from_mlflow = collect(source)
    from_optuna = collect(source, use_mlflow=False)
    assert from_mlflow.source == "mlflow" and from_optuna.source == "optuna"
    a = from_mlflow.trials.drop(columns=["run_id", "source", "error"])
    b = from_optuna.trials.drop(columns=["run_id", "source", "error"])
    assert list(a.columns) == list(b.columns)
    assert set(TRIAL_COLUMNS) - {"run_id", "source", "error"} < set(a.columns)
    pd.testing.assert_frame_equal(a, b)
    assert (from_mlflow.trials["run_id"] != "").all()
    assert from_mlflow.variables == ["method"] and from_mlflow.bundles == ["method"]


def test_without_mlflow_the_tables_come_from_optuna_and_say_so(store, tmp_path):
    invoke(str(study_file(store)), "--out", str(tmp_path / "online"), "--no-tokens")
    missing = f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}"
    out = invoke(
        str(study_file(store)),
        "--out",
        str(tmp_path / "offline"),
        "--no-tokens",
        "--tracking-uri",
        missing,
    )
    assert "note: MLflow unavailable (FileNotFoundError: no MLflow database" in out
    assert "(from the Optuna storage)" in out
    index = (tmp_path / "offline" / "keep_ratio" / "index.md").read_text()
    assert "MLflow was unavailable: the tables come from the Optuna storage alone" in index
    online = (tmp_path / "online" / "keep_ratio" / "results.md").read_text()
    assert (tmp_path / "offline" / "keep_ratio" / "results.md").read_text() == online


def test_failed_trials_are_counted_and_listed_never_averaged(store, tmp_path):
    invoke(str(study_file(store)), "--out", str(tmp_path), "--no-tokens")
    index = (tmp_path / "keep_ratio" / "index.md").read_text()
    listed = index.split("## Trials not in the table")[1]
    rows = [" ".join(r.split()) for r in listed.splitlines() if r.startswith("| ") and "FAIL" in r]
    assert len(rows) == 2 and all("| broken |" in r and "| crash |" in r for r in rows)
    assert "stage finetune exited with 1" in rows[0]
    trials = pd.read_csv(tmp_path / "keep_ratio" / "trials.csv")
    assert sorted(trials["state"]) == ["COMPLETE"] * 6 + ["FAIL"] * 2


def test_without_arguments_every_study_of_the_local_store(store, tmp_path, monkeypatch):
    monkeypatch.chdir(store)
    out = invoke("--out", str(tmp_path), "--no-tokens", "--format", "md,csv")
    assert "study keep_ratio:" in out and "study small:" in out
    assert sorted(p.name for p in (tmp_path / "keep_ratio").glob("results.*")) == [
        "results.csv",
        "results.md",
    ]
    assert not (tmp_path / "small" / "index.html").exists()  # html not asked for
    by_name = invoke("small", "--out", str(tmp_path / "named"), "--no-tokens")
    assert "study small: 2 trials: 2 complete." in by_name
    by_folder = invoke(
        str(store / "studies" / "runs" / "small"), "--out", str(tmp_path / "f"), "--no-tokens"
    )
    assert "study small:" in by_folder


def test_compare_puts_studies_in_one_table(store, tmp_path):
    files = [str(study_file(store)), str(store / "studies" / "small.yaml")]
    out = invoke(*files, "--compare", "--out", str(tmp_path), "--no-tokens")
    table = md_table(tmp_path / "compare-keep_ratio-small" / "results.md")
    assert list(table["method"]) == ["videomae (baseline)", "mats-0.6", "mats-0.3", "", ""]
    assert list(table.index) == ["keep_ratio", "keep_ratio", "keep_ratio", "small", "small"]
    assert table["keep ratio"].tolist() == ["1.0", "0.6", "0.3", "0.5", "1.0 (baseline)"]
    assert table["seeds"].tolist() == ["2", "2", "2", "1", "1"]
    assert "study keep_ratio vs small" in out
    assert (tmp_path / "keep_ratio" / "index.md").is_file() and (
        tmp_path / "small" / "index.md"
    ).is_file()


def test_bad_arguments_fail_plainly(store, tmp_path):
    result = CliRunner().invoke(app, ["report", "no-such-study", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "not a study file, a study folder or the name" in result.output
    result = CliRunner().invoke(app, ["report", str(study_file(store)), "--format", "md,pdf"])
    assert result.exit_code == 2 and "choose from md,csv,tex,html" in result.output
    result = CliRunner().invoke(app, ["report", str(study_file(store)), "--baseline", "mats-0.9"])
    assert result.exit_code == 2 and "matches no configuration" in result.output


def test_the_study_files_baseline_is_the_reports_unless_the_option_says_otherwise(store, tmp_path):
    data = keep_ratio_study() | {"baseline": "mats-0.6", "output": "runs/keep_ratio"}
    based = store / "studies" / "keep_ratio_based.yaml"  # the same study and stores
    based.write_text(yaml.safe_dump(data, sort_keys=False))
    invoke(str(based), "--out", str(tmp_path / "file"))
    index = (tmp_path / "file" / "keep_ratio" / "index.md").read_text()
    assert "Baseline row: `mats-0.6`: the study file's `baseline`" in index
    assert (
        "(baseline)"
        in md_table(tmp_path / "file" / "keep_ratio" / "results.md").loc["mats-0.6 (baseline)"].name
    )
    invoke(str(based), "--out", str(tmp_path / "option"), "--baseline", "videomae")
    index = (tmp_path / "option" / "keep_ratio" / "index.md").read_text()
    assert "Baseline row: `videomae`: --baseline" in index
    based.write_text(yaml.safe_dump(data | {"baseline": "mats-0.9"}, sort_keys=False))
    result = CliRunner().invoke(app, ["report", str(based), "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "baseline: 'mats-0.9' is no bundle label" in result.output


def test_token_picture_runs_show_tokens_on_the_best_trial(store, tmp_path):
    data = collect(resolve(str(study_file(store)), store))
    summary = summarise(
        data.trials, data.variables, bundles=data.bundles, stage_names=data.stage_names
    )
    best = data.trials[data.trials["params.method"] == "videomae"]["trial"].min()  # 0.9 > 0.74
    work = tmp_path / "stage"
    work.mkdir()
    (work / "config.py").write_text("model = dict()\n")
    (work / "epoch_3.pth").write_bytes(b"weights")
    (work / "result.json").write_text(
        json.dumps({"config": str(work / "config.py"), "checkpoint": str(work / "epoch_3.pth")})
    )
    for trial in data.trials.loc[data.trials["params.method"] == "videomae", "trial"]:
        data.stages[int(trial)] = [{"name": "finetune", "work_dir": str(work)}]
    data.root = tmp_path
    (tmp_path / "data" / "motion_synth" / "videos" / "val").mkdir(parents=True)
    (tmp_path / "data" / "motion_synth" / "val_list_videos.txt").write_text("videos/val/v0.mp4 3\n")
    (tmp_path / "data" / "motion_synth" / "videos" / "val" / "v0.mp4").write_bytes(b"")
    calls = []

    def run(argv, **kwargs):
        calls.append((argv, kwargs))
        Path(argv[argv.index("--out") + 1]).write_bytes(b"\x89PNG")
        return subprocess.CompletedProcess(argv, 0, "", "")

    png, note = token_picture(data, summary, tmp_path / "out" / "tokens.png", run=run)
    assert note == f"trial {best} on v0.mp4" and png == tmp_path / "out" / "tokens.png"
    argv, kwargs = calls[0]
    assert argv[:5] == [
        sys.executable,
        "-m",
        "mats_lab.cli.main",
        "show-tokens",
        "data/motion_synth/videos/val/v0.mp4",  # inside the repository: relative to it
    ]
    assert argv[5:] == [
        "--config",
        "stage/config.py",
        "--checkpoint",
        "stage/epoch_3.pth",
        "--out",
        str(png),
        "--json",
        str(png.with_suffix(".json")),
    ]
    assert kwargs["cwd"] == tmp_path

    def broken(argv, **kwargs):
        return subprocess.CompletedProcess(argv, 1, "", "Traceback\nRuntimeError: bad weights\n")

    png, note = token_picture(data, summary, tmp_path / "out2" / "tokens.png", run=broken)
    assert png is None and note == "show-tokens failed (1): RuntimeError: bad weights"


def test_report_process_imports_no_torch(store, tmp_path):
    heavy = {"torch", "mmengine", "mmcv", "mmaction"}
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from mats_lab.report.build import ReportOptions, run_report\n"
        f"options = ReportOptions(out=Path({str(tmp_path)!r}))\n"
        f"run_report([{str(study_file(store))!r}], options, echo=lambda s: None)\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert (tmp_path / "keep_ratio" / "index.md").is_file()


def test_a_run_is_compared_with_a_reference_report(store, tmp_path):
    """make demo's report: written elsewhere than the reference, compared with it."""
    invoke(str(study_file(store)), "--out", str(tmp_path / "reference"), "--no-tokens")
    out = invoke(
        str(study_file(store)), "--out", str(tmp_path / "local"), "--no-tokens",
        "--reference", str(tmp_path / "reference"),
    )  # fmt: skip
    assert f"reference in {tmp_path / 'reference' / 'keep_ratio'}" in out
    written = (tmp_path / "local" / "keep_ratio" / "reference.md").read_text()
    rows = [line for line in written.splitlines() if line.startswith("| ") and "%" in line]
    assert any(row.startswith("| videomae") for row in rows)
    assert all(row.split("|")[-2].strip() == "+0.0" for row in rows), "itself: no difference"
    # two seeds: both reports tested every row against the baseline; the same verdicts
    heading = next(line for line in written.splitlines() if line.startswith("Verdicts"))
    same, total = (int(n) for n in heading.rsplit(": ", 1)[1].split(" the same")[0].split(" of "))
    assert total > 0 and same == total, heading
    assert "The reference ran on" not in written  # the same machines
    # a reference trained elsewhere: the comparison names both machines
    ref_trials = tmp_path / "reference" / "keep_ratio" / "trials.csv"
    frame = pd.read_csv(ref_trials)
    frame.assign(machine="box-c").to_csv(ref_trials, index=False)
    out = invoke(
        str(study_file(store)), "--out", str(tmp_path / "local"), "--no-tokens",
        "--reference", str(tmp_path / "reference"),
    )  # fmt: skip
    assert "The reference ran on box-c; this run on box-a / box-b." in out
    assert "Not on the same footing" not in out  # neither report adjusts its p-values
    # an adjusted run against an unadjusted reference: said, since a verdict may differ for it
    out = invoke(
        str(study_file(store)), "--out", str(tmp_path / "local"), "--no-tokens",
        "--reference", str(tmp_path / "reference"), "--adjust", "holm",
    )  # fmt: skip
    assert "Not on the same footing: one of the two reports adjusts its p-values" in out
