"""Study files: every schema error names the file, the dotted key and what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mats_lab.protocol.spec import StudyError, load_study, parse_duration

FT = "mm_configs/mats_vit-tiny-p8_finetune_8x4x1_motion-synth.py"
BASE = f"""name: s
stages:
  - {{name: finetune, config: {FT}}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(StudyError) as info:
        load_study(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_a_valid_study_loads_with_defaults(tmp_path):
    spec = load_study(write(tmp_path, BASE + "space:\n  keep_ratio: {grid: [0.3, 0.6]}\n"))
    assert spec.sampler.type == "grid" and spec.seeds == [0]
    assert spec.objectives[0].metric == "val/acc/top1"
    assert spec.space["keep_ratio"].values == [0.3, 0.6]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE + "bogus: 1\n", r"bogus: unknown key"),
        (
            f"name: s\nstages:\n  - {{name: ft, config: {FT}, colour: red}}\n",
            r"stages\.0\.colour: unknown key",
        ),
        ("name: s\n", r"stages: Field required"),
        ("name: s\nstages: []\n", r"stages: List should have at least 1 item"),
        (
            BASE + "space:\n  keep_ratio: {grid: [0.3], choices: [1]}\n",
            r"space\.keep_ratio.*exactly one of grid, choices, int, float",
        ),
        (BASE + "space:\n  keep_ratio: {grid: []}\n", r"space\.keep_ratio.*at least one value"),
        (
            BASE + "space:\n  lr: {float: [0.0, 1.0], log: true}\n",
            r"space\.lr.*log-scaled range needs low > 0",
        ),
        (
            BASE + "space:\n  lr: {float: [2.0, 1.0]}\n",
            r"space\.lr.*low 2\.0 must not exceed high 1\.0",
        ),
        (
            BASE + "space:\n  colour: {grid: [1]}\n",
            r"space\.colour: unknown variable; expected a dotted config key",
        ),
        (BASE + "space:\n  seed: {grid: [1]}\n", r"space\.seed: 'seed' is reserved"),
        (
            BASE + "space:\n  keep_ratio: {grid: [0.3], stages: [pretrain]}\n",
            r"space\.keep_ratio\.stages: no stage named 'pretrain'",
        ),
        (
            BASE + "space:\n  lr: {float: [0.001, 0.01]}\n",
            r"space\.lr: the grid sampler needs listed values",
        ),
        (
            BASE + "sampler: {type: tpe}\nspace:\n  lr: {float: [0.001, 0.01]}\n",
            r"budget: a tpe study needs budget\.trials or \.time",
        ),
        (
            BASE + "sampler: {type: annealing}\n",
            r"sampler\.type: Input should be 'grid', 'tpe', 'gp', 'nsga2' or 'random'",
        ),
        (
            BASE
            + "pruner: {type: median}\nobjectives: [{metric: val/acc/top1}, "
            + "{metric: train_gmacs, direction: minimize}]\n",
            r"pruner: Optuna prunes single-objective studies only",
        ),
        (
            BASE + "constraints: [{metric: train_gmacs, max: 1}]\n",
            r"constraints: the grid sampler ignores constraints",
        ),
        (
            BASE + "objectives: [{metric: accuracy}]\n",
            r"objectives\.0\.metric: unknown metric 'accuracy'",
        ),
        (
            BASE + "objectives: [{metric: val/acc/top1, direction: up}]\n",
            r"objectives\.0\.direction: Input should be 'maximize' or 'minimize'",
        ),
        (
            BASE + "resources: {devices: -1}\n",
            r"resources\.devices: a number of slots must be >= 1",
        ),
        (BASE + "resources: {devices: [0, 0]}\n", r"resources\.devices: GPU ids must be distinct"),
        (
            BASE + "resources: {trials_per_device: 0}\n",
            r"resources\.trials_per_device: Input should be greater than or equal to 1",
        ),
        (BASE + "budget: {time: soon}\n", r"budget\.time: expected a duration like 90"),
        (BASE + "retries: -1\n", r"retries: Input should be greater than or equal to 0"),
        (BASE + "seeds: []\n", r"seeds: List should have at least 1 item"),
        (
            f"name: s\nstages:\n  - {{name: ft, config: {FT}, load_from: pre}}\n",
            r"stages\.0\.load_from: 'pre' is not an earlier stage",
        ),
        (
            f"name: s\nstages:\n  - {{name: ft, config: {FT}}}\n  - {{name: ft, config: {FT}}}\n",
            r"stages\.1\.name: stage 'ft' is listed twice",
        ),
        (
            "name: s\nstages:\n  - {name: ft, config: 'mm_configs/x-{method}.py'}\n",
            r"stages\.0\.config: placeholder \{method\} is not a variable",
        ),
        (
            f"name: s\nstages:\n  - {{name: ft, config: {FT}, knobs: {{colour: 1}}}}\n",
            r"stages\.0\.knobs\.colour: unknown knob",
        ),
        (
            f"name: s\nstages:\n  - {{name: ft, config: {FT}, overrides: {{epochs: 1}}}}\n",
            r"stages\.0\.overrides\.epochs: expected a config key",
        ),
        (
            "name: 'bad name'\nstages:\n  - {name: ft, config: x.py}\n",
            r"name: String should match pattern",
        ),
        (
            BASE + "space: {keep_ratio: {grid: [0.5, 1.0]}}\nbaseline: keep_ratio=0.7\n",
            r"baseline: keep_ratio=0\.7 is not among the values of keep_ratio \(0\.5, 1\.0\)",
        ),
        (
            BASE + "space: {keep_ratio: {grid: [0.5, 1.0]}}\nbaseline: masking=tube\n",
            r"baseline: 'masking' is not a variable of space \(variables: keep_ratio\)",
        ),
        (
            BASE + "space: {keep_ratio: {grid: [0.5, 1.0]}}\nbaseline: videomae\n",
            r"baseline: 'videomae' is no bundle label of space \(none\)",
        ),
    ],
)
def test_schema_errors_name_the_key(tmp_path, text, expected):
    assert re.search(expected, error_of(tmp_path, text))


def test_a_baseline_names_a_bundle_label_or_values_of_the_space(tmp_path):
    space = (
        "space:\n  method:\n    grid:\n      - {label: videomae, keep_ratio: 1.0}\n"
        "      - {label: mats-0.3, keep_ratio: 0.3}\n  lr: {float: [0.0001, 0.01]}\n"
        "sampler: {type: random}\nbudget: {trials: 4}\n"
    )
    for baseline in ("videomae", "keep_ratio=1.0", "keep_ratio=0.3, lr=0.001"):
        spec = load_study(write(tmp_path, BASE + space + f"baseline: '{baseline}'\n"))
        assert spec.baseline == baseline
    assert load_study(write(tmp_path, BASE)).baseline is None


def test_yaml_syntax_error_names_line(tmp_path):
    message = error_of(tmp_path, "name: s\nstages: [\n")
    assert "not valid YAML" in message and "line" in message


def test_top_level_must_be_a_mapping(tmp_path):
    assert "expected a mapping at the top level, got list" in error_of(tmp_path, "- 1\n- 2\n")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(StudyError, match=r"missing\.yaml: cannot read the study file"):
        load_study(tmp_path / "missing.yaml")


def test_yaml_tags_are_not_executed(tmp_path):
    message = error_of(tmp_path, "name: !!python/object/apply:os.system ['true']\n")
    assert "not valid YAML" in message


def test_set_pins_a_variable_and_adds_new_ones(tmp_path):
    path = write(tmp_path, BASE + "space:\n  keep_ratio: {grid: [0.3, 0.6], stages: [finetune]}\n")
    spec = load_study(path, {"keep_ratio": 0.45, "epochs": 2})
    assert spec.space["keep_ratio"].values == [0.45]
    assert spec.space["keep_ratio"].stages == ["finetune"]
    assert spec.space["epochs"].values == [2]
    with pytest.raises(StudyError, match=r"space\.colour: unknown variable"):
        load_study(path, {"colour": 1})


def test_bundles_and_placeholders(tmp_path):
    text = (
        "name: s\nstages:\n  - {name: ft, config: 'mm_configs/x-{frame_select}.py'}\n"
        "space:\n  method:\n    grid:\n      - {label: mats, keep_ratio: 0.5, frame_select: afs}\n"
        "      - {label: full, keep_ratio: 1.0, frame_select: uniform}\n"
    )
    spec = load_study(write(tmp_path, text))
    assert [v["label"] for v in spec.space["method"].values] == ["mats", "full"]
    bad = text.replace("keep_ratio: 0.5", "colour: 0.5")
    assert "space.method.grid.0.colour: unknown variable" in error_of(tmp_path, bad)


@pytest.mark.parametrize(
    ("text", "seconds"), [(90, 90.0), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_shipped_studies_validate():
    root = Path(__file__).resolve().parents[1] / "studies"
    files = sorted(p for p in root.rglob("*.yaml") if "runs" not in p.relative_to(root).parts)
    assert any(p.parent != root for p in files), "the study files in subfolders are covered too"
    for path in files:
        load_study(path)


def test_a_factorial_study_skips_a_stage_for_the_points_its_when_excludes():
    """studies/keep_ratio_factorial.yaml: the 'none' arm has no pre-training and fine-tunes from
    scratch; each pre-training (recipe, seed) is one stage run shared by its three keep ratios."""
    from mats_lab.lab.space import grid_points, plan_stages

    root = Path(__file__).resolve().parents[1]
    spec = load_study(root / "studies" / "keep_ratio_factorial.yaml")
    points = grid_points(spec)
    assert len(points) == 27
    plans = {(p.params["pretrain"], p.params["keep_ratio"], p.seed): plan_stages(spec, p, root)
             for p in points}  # fmt: skip
    none = plans[("none", 0.6, 1)]
    assert [s.name for s in none] == ["finetune"] and none[0].load_from is None
    tube = plans[("videomae", 0.3, 1)]
    assert [s.name for s in tube] == ["pretrain", "finetune"]
    assert tube[1].load_from == "pretrain"
    shared = {plans[("mats", k, 2)][0].key for k in (1.0, 0.6, 0.3)}
    assert len(shared) == 1, "one MATS pre-training per seed, reused by every keep ratio"
    assert plans[("mats", 1.0, 2)][0].key != plans[("mats", 1.0, 1)][0].key
    assert plans[("mats", 1.0, 2)][0].key != plans[("videomae", 1.0, 2)][0].key


def test_the_pooled_factorial_study_plans_exactly_the_stages_of_its_two_runs():
    """studies/keep_ratio_factorial_pooled.yaml reuses the finished stages of the two runs
    (seeds 0-2 and 3-5): a stage's key depends on what it trains, not on the study's name or
    its seed list, so every stage of the pooled study is one of theirs and nothing else."""
    from mats_lab.lab.space import grid_points, plan_stages

    root = Path(__file__).resolve().parents[1]

    def keys(name: str) -> set[str]:
        spec = load_study(root / "studies" / f"{name}.yaml")
        return {plan.key for p in grid_points(spec) for plan in plan_stages(spec, p, root)}

    first, replica = keys("keep_ratio_factorial"), keys("keep_ratio_factorial_replica")
    assert len(first) == len(replica) == 33 and not first & replica  # 6 pre-trainings + 27
    assert keys("keep_ratio_factorial_pooled") == first | replica


def test_when_names_a_variable_of_the_space(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nstages:\n  - {name: a, config: x.py, when: {recipe: [mats]}}\n"
        "space: {keep_ratio: {grid: [0.5]}}\n"
    )
    with pytest.raises(StudyError, match=r"stages\.0\.when\.recipe: not a variable of space"):
        load_study(path)


def test_when_takes_a_bundle_key_or_its_name_but_not_its_label(tmp_path):
    """A bundle's keys and its own name are variables a stage's `when` may test; `label`
    only names the bundle's values."""
    bundle = "space: {pt: {grid: [{label: none}, {label: m, masking: mats}]}}\n"
    for when, ok in (("{pt: [m]}", True), ("{masking: [mats]}", True), ("{label: [m]}", False)):
        text = f"name: s\nstages:\n  - {{name: a, config: x.py, when: {when}}}\n{bundle}"
        if ok:
            load_study(write(tmp_path, text))
        else:
            assert "stages.0.when.label: not a variable of space" in error_of(tmp_path, text)


BASE_STUDY = f"""name: base
stages:
  - {{name: finetune, config: {FT}, knobs: {{epochs: 40}}}}
space:
  keep_ratio: {{stages: [finetune], grid: [1.0, 0.3]}}
  lr: {{low: 0.0001, high: 0.01, log: true}}
seeds: [0, 1, 2]
resources: {{devices: 2, cpu_threads: 1}}
baseline: keep_ratio=1.0
"""


def test_extends_merges_mappings_and_replaces_lists_and_values(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE_STUDY)
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "replica.yaml").write_text(
        "extends: ../base.yaml\nname: replica\nseeds: [3, 4]\n"
        "space: {keep_ratio: {grid: [0.6, 1.0]}, lr: {_delete_: true, grid: [0.001]}}\n"
        "resources: {devices: 1}\n"
    )
    spec = load_study(sub / "replica.yaml")
    assert spec.name == "replica" and spec.seeds == [3, 4]
    assert spec.space["keep_ratio"].values == [0.6, 1.0], "the list replaces the base's"
    assert spec.space["keep_ratio"].stages == ["finetune"], "the mapping keeps the base's keys"
    assert spec.space["lr"].values == [0.001], "_delete_ drops the base's low/high/log"
    assert spec.resources.devices == 1 and spec.resources.cpu_threads == 1
    assert spec.stages[0].knobs == {"epochs": 40} and spec.baseline == "keep_ratio=1.0"
    # a chain: a file extending the replica gets the base's keys through it
    (sub / "third.yaml").write_text("extends: replica.yaml\nname: third\nseeds: [9]\n")
    third = load_study(sub / "third.yaml")
    assert third.seeds == [9] and third.space["keep_ratio"].values == [0.6, 1.0]


def test_extends_errors_name_the_file_and_the_chain(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE_STUDY)
    cases = {
        "extends: missing.yaml\nname: x\n": "extends: no study file",
        "extends: base.yaml\nseeds: [5]\n": "name: a study that extends base.yaml needs a name",
        "extends: [base.yaml]\nname: x\n": "extends: expected the path of another study file",
        "extends: study.yaml\nname: x\n": "extends: study.yaml leads back to itself",
        "extends: base.yaml\nname: x\nspace: {lr: {_delete_: yes please}}\n": (
            "space.lr._delete_: expected true or false"
        ),
    }
    for text, message in cases.items():
        assert message in error_of(tmp_path, text), text
    # a schema error in the merged mapping names the file run and what it extends
    text = "extends: base.yaml\nname: x\nresources: {colour: red}\n"
    error = error_of(tmp_path, text)
    assert f"(extends {tmp_path / 'base.yaml'})" in error
    assert "resources.colour: unknown key" in error
    # a loop through two files
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(StudyError, match=r"b\.yaml: extends: a\.yaml leads back to itself"):
        load_study(tmp_path / "a.yaml")


def test_the_replica_and_pooled_studies_are_the_factorial_study_with_other_seeds():
    root = Path(__file__).resolve().parents[1]
    studies = root / "studies"
    first = load_study(studies / "keep_ratio_factorial.yaml").model_dump()
    for name, seeds in (("replica", [3, 4, 5]), ("pooled", [0, 1, 2, 3, 4, 5])):
        other = load_study(studies / f"keep_ratio_factorial_{name}.yaml").model_dump()
        assert other.pop("seeds") == seeds and other.pop("name").endswith(name)
        assert {k: v for k, v in first.items() if k not in ("seeds", "name", "description")} == {
            k: v for k, v in other.items() if k != "description"
        }
