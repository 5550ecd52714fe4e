"""``mats-lab sweep``, ``mats-lab worker`` and ``mats-lab sync``: run a study file as an Optuna
study on this node's devices, join it from another machine, push results to MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mats_lab.cli.common import fail, parse_cfg_options


def _load(study: Path, sets: list[str]):  # noqa: ANN202 - StudySpec, imported lazily
    from mats_lab.protocol.spec import StudyError, load_study

    try:
        return load_study(study, parse_cfg_options(sets) if sets else None)
    except StudyError as exc:
        fail(str(exc))


def _devices(text: str | None) -> list[int] | int | str | None:
    if text is None:
        return None
    from mats_lab.protocol.spec import check_devices

    try:
        return check_devices(text)
    except ValueError as exc:
        fail(f"--devices: {exc}")


def _preflight(spec, study: Path) -> int:  # noqa: ANN001
    """Refuse the study (exit 2) when any stage of any trial cannot run; the stages checked."""
    from mats_lab.lab.preflight import PreflightError, check_study
    from mats_lab.protocol.spec import study_paths

    _, root = study_paths(spec, study)
    try:
        return check_study(spec, study, root)
    except PreflightError as exc:
        fail(f"{exc}\nnothing was started: fix the study file and run again")


def _check_pool(spec, devices: str | None) -> str:  # noqa: ANN001
    """The device pool the sweep would use, in words; exit 2 if a stage needs more devices."""
    from mats_lab.lab.launch import make_slots
    from mats_lab.lab.pool import DevicePool, PoolError

    res = spec.resources
    chosen = _devices(devices)
    slots = make_slots(chosen if chosen is not None else res.devices, res.trials_per_device,
                       res.cpu_threads)  # fmt: skip
    pool: DevicePool = DevicePool(slots)
    try:
        for stage in spec.stages:
            pool.check(stage.name, stage.devices)
    except PoolError as exc:
        fail(str(exc))
    return f"{pool.devices} devices ({', '.join(sorted({s.label for s in slots}))})"


def _dry_run(spec, study: Path, devices: str | None = None) -> None:  # noqa: ANN001
    from mats_lab.lab.space import grid_points, plan_stages
    from mats_lab.protocol.spec import study_paths

    checked = _preflight(spec, study)
    pool = _check_pool(spec, devices)
    folder, root = study_paths(spec, study)
    typer.echo(f"study {spec.name}  folder {folder}  ({checked} distinct stages check out)")
    typer.echo(f"device pool: {pool}")
    if spec.sampler.type != "grid":
        typer.echo(
            f"sampler {spec.sampler.type} (seed {spec.sampler.seed}): trials are sampled as the "
            f"study runs; budget {spec.budget.trials or '-'} trials, {spec.budget.time or '-'}"
        )
        for name, var in spec.space.items():
            typer.echo(f"  {name}: {var.model_dump(by_alias=True, exclude_none=True)}")
        return
    points = grid_points(spec)
    if spec.budget.trials is not None:
        points = points[: spec.budget.trials]
    keys: dict[str, int] = {}
    for i, point in enumerate(points):
        typer.echo(f"trial {i}: {point.describe()}")
        for plan in plan_stages(spec, point, root, spec.command):
            shared = " (shared)" if plan.key in keys else ""
            keys[plan.key] = keys.get(plan.key, 0) + 1
            config = Path(plan.config)
            shown = config.relative_to(root) if config.is_relative_to(root) else config
            on = f" on {plan.devices} devices" if plan.devices != 1 else ""
            typer.echo(f"  {plan.name}: {shown}{on}{shared}")
            if plan.overrides:
                typer.echo(f"    overrides {json.dumps(plan.overrides)}")
            if plan.knobs:
                typer.echo(f"    knobs     {json.dumps(plan.knobs)}")
            if plan.load_from:
                typer.echo(f"    load_from {plan.load_from}")
    typer.echo(f"{len(points)} trials, {len(keys)} distinct stage runs")


def sweep(
    study: Path = typer.Argument(..., help="a studies/*.yaml file"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the trials, run nothing"),
    devices: str = typer.Option(
        None, "--devices", help="GPU ids (0,1,2) or a number of CPU slots; default: the study's"
    ),
    max_trials: int = typer.Option(None, "--max-trials", min=1, help="start at most N trials"),
    sets: list[str] = typer.Option([], "--set", help="name=value: pin a variable for every trial"),
    fresh: bool = typer.Option(False, "--fresh", help="delete the stored study and start over"),
    storage: str = typer.Option(None, "--storage", help="Optuna storage URL"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow tracking URI"),
    stage_store: str = typer.Option(
        None, "--stage-store", help="shared folder for stage work dirs (default: study folder)"
    ),
) -> None:
    """Run a study: every trial trained, measured and logged; resumes when it exists."""
    spec = _load(study, sets)
    if dry_run:
        _dry_run(spec, study, devices)
        return
    options = _options(devices, max_trials, fresh, storage, tracking_uri, stage_store)
    _run(spec, study, options)


def _options(  # noqa: ANN202 - SweepOptions, imported lazily
    devices: str | None,
    max_trials: int | None,
    fresh: bool,
    storage: str | None,
    tracking_uri: str | None,
    stage_store: str | None,
    worker: bool = False,
    heartbeat: int | None = None,
):
    from mats_lab.lab.sweep import HEARTBEAT, SweepOptions

    return SweepOptions(
        devices=_devices(devices),
        max_trials=max_trials,
        fresh=fresh,
        storage=storage,
        tracking_uri=tracking_uri,
        worker=worker,
        stage_store=stage_store,
        heartbeat=heartbeat or HEARTBEAT,
    )


def _run(spec, study, options) -> None:  # noqa: ANN001
    from mats_lab.lab.sweep import Sweep

    _preflight(spec, study)
    try:
        code = Sweep(spec, study, options).run()
    except RuntimeError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted twice; run the same command again to resume", 130)
    if code:
        raise typer.Exit(code)


def worker(
    study: Path = typer.Argument(..., help="the same studies/*.yaml file as the other workers"),
    storage: str = typer.Option(..., "--storage", help="database URL, e.g. postgresql://..."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="the shared MLflow server"),
    devices: str = typer.Option(None, "--devices", help="GPU ids or a number of CPU slots"),
    max_trials: int = typer.Option(None, "--max-trials", min=1),
    sets: list[str] = typer.Option([], "--set", help="name=value, as the other workers"),
    stage_store: str = typer.Option(
        None,
        "--stage-store",
        help="folder on a shared filesystem for stage work dirs (reuse/resume across nodes)",
    ),
    heartbeat: int = typer.Option(
        30,
        "--heartbeat",
        min=1,
        help="seconds between trial heartbeats; a worker silent for 4 of them loses its trials",
    ),
) -> None:
    """Join a study shared through a database server from this machine."""
    if storage.startswith(("journal://", "sqlite")):
        fail(f"--storage {storage}: workers on several machines need a database server URL")
    spec = _load(study, sets)
    options = _options(
        devices, max_trials, False, storage, tracking_uri, stage_store, True, heartbeat
    )
    _run(spec, study, options)


def sync(
    study: Path = typer.Argument(..., help="a studies/*.yaml file"),
    storage: str = typer.Option(None, "--storage"),
    tracking_uri: str = typer.Option(None, "--tracking-uri"),
) -> None:
    """Push finished trials that MLflow has not seen (after it was unreachable)."""
    spec = _load(study, [])
    from mats_lab.lab.sync import sync_study

    try:
        pushed, total = sync_study(spec, study, storage, tracking_uri)
    except Exception as exc:  # noqa: BLE001 - report any tracking failure plainly
        fail(f"sync failed: {type(exc).__name__}: {exc}", 1)
    typer.echo(f"{pushed} trials pushed to MLflow, {total - pushed} already there")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
    app.command("worker")(worker)
    app.command("sync")(sync)
