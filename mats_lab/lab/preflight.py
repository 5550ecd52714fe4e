"""Check every stage of every trial a study can run before the first one starts.

A typo in a study file should cost seconds, not the hours of the pre-training that runs before
the misspelt fine-tuning stage. The study schema already refuses unknown keys and knob values
out of range (:mod:`mats_lab.protocol.spec`); here every grid point (or, for a sampled study,
every listed value and both ends of every range) is planned into its stages, and

- every placeholder of a stage's config path must fill and the file must exist (a near miss
  is suggested);
- with the MMEngine stage runner as the trial command, every distinct stage is resolved
  without training by ``python -m mats_lab.trial.preflight`` in one subprocess (this layer
  never imports torch or mmengine): the config loads, every dotted override names an existing
  key, every knob applies; that process then generates the embedded dataset if it is missing,
  its progress bar on the terminal.

Each problem names the study file, the stage's key in it, the grid point and what is allowed.

Only the standard library, :mod:`mats_lab.protocol` and the lab's own modules are imported here.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mats_lab.lab.space import (
    Point,
    StagePlan,
    grid_label,
    grid_points,
    plan_stages,
    point_from_params,
)
from mats_lab.protocol.records import StageSpec
from mats_lab.protocol.spec import Scalar, StudySpec, Variable

__all__ = ["PreflightError", "check_study", "sample_points"]

#: How many points of a sampled study's space are checked at most (listed values x range ends).
MAX_SAMPLED_POINTS = 256


class PreflightError(ValueError):
    """Stages that cannot run; the message has one line per problem."""


@dataclass(frozen=True)
class _Checked:
    """A distinct stage to resolve, and every (point, stage index) that runs it."""

    plan: StagePlan
    where: list[str]


def _ends(var: Variable) -> list[Scalar]:
    if var.int_range is not None:
        return list(var.int_range)
    if var.float_range is not None:
        return list(var.float_range)
    return [grid_label(v) for v in var.values]


def sample_points(spec: StudySpec) -> list[Point]:
    """Points that cover a study's space: every grid point (first seed: seeds do not change a
    config), or for a sampled study every listed value and both ends of every range (the first
    ``MAX_SAMPLED_POINTS`` combinations)."""
    seed = spec.seeds[0]
    if spec.sampler.type == "grid":
        return [p for p in grid_points(spec) if p.seed == seed]
    names = list(spec.space)
    combos = itertools.islice(
        itertools.product(*[_ends(spec.space[n]) for n in names]), MAX_SAMPLED_POINTS
    )
    return [point_from_params(spec, dict(zip(names, c, strict=True)), seed) for c in combos]


def _missing_config(plan: StagePlan, root: Path) -> str:
    path = Path(plan.config)
    near = difflib.get_close_matches(path.name, [p.name for p in path.parent.glob("*.py")], n=1)
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    hint = f"; did you mean {near[0]}?" if near else ""
    return f"config {shown} does not exist{hint}"


def check_study(spec: StudySpec, study_file: Path, root: Path, resolve: bool | None = None) -> int:
    """Raise :class:`PreflightError` naming every stage that cannot run; returns the number
    of distinct stages checked. ``resolve`` (default: when the study uses the MMEngine stage
    runner) also resolves each stage's config in a subprocess."""
    if resolve is None:
        resolve = spec.command is None
    index = {stage.name: i for i, stage in enumerate(spec.stages)}
    problems: list[str] = []
    distinct: dict[str, _Checked] = {}
    for n, point in enumerate(sample_points(spec)):
        label = f"point {n} ({point.describe()})" if point.params else "the trial"
        try:
            plans = plan_stages(spec, point, root, spec.command)
        except KeyError as exc:
            problems.append(f"{label}: {exc.args[0]}")
            continue
        for plan in plans:
            where = f"stages.{index[plan.name]} ({plan.name}), {label}"
            if not Path(plan.config).is_file():
                problems.append(f"{where}: {_missing_config(plan, root)}")
                continue
            material = json.dumps(
                [plan.config, plan.overrides, plan.knobs, plan.strict], sort_keys=True, default=str
            )
            distinct.setdefault(material, _Checked(plan, [])).where.append(where)
    if resolve and distinct and not problems:  # missing files first: quick to fix, quick to say
        checked = list(distinct.values())
        for i, error in _resolve_all([c.plan for c in checked]).items():
            places = checked[i].where
            more = f" (and {len(places) - 1} more points)" if len(places) > 1 else ""
            problems.append(f"{places[0]}{more}: {error}")
    if problems:
        raise PreflightError("\n".join(f"{study_file}: {p}" for p in problems))
    return len(distinct)


def _resolve_all(plans: list[StagePlan]) -> dict[int, str]:
    """``{plan index: error}`` from resolving every plan in one trial-side subprocess."""
    specs = [
        StageSpec(
            config=p.config,
            overrides=p.overrides,
            knobs=p.knobs,
            strict=p.strict,
            seed=p.seed,
            work_dir="",
            resolve_only=True,
        ).model_dump()
        for p in plans
    ]
    with tempfile.TemporaryDirectory(prefix="mats-lab-preflight-") as tmp:
        request = Path(tmp) / "stages.json"
        request.write_text(json.dumps(specs))
        env = dict(os.environ, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")
        # stderr is the terminal's: the embedded dataset's progress bar shows there.
        proc = subprocess.run(  # noqa: S603 - an argument list, never a shell
            [sys.executable, "-m", "mats_lab.trial.preflight", str(request)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise PreflightError(f"the stage configs could not be checked (see above):\n{tail}")
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    return {int(k): str(v) for k, v in answer.items()}
