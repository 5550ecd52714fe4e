"""The ``mats-lab`` command: registers the command groups.

Heavy libraries (torch, mm*) are imported inside the commands, so ``mats-lab --help``
starts fast.
"""

import typer

from mats_lab.cli import bench, data, demo, model_tools, report, show_tokens, sweep, train

app = typer.Typer(
    name="mats-lab",
    help="Motion-Aware Token Selection for MMAction2: models, data, sweeps and reports.",
    no_args_is_help=True,
    add_completion=False,
)
model_tools.register(app)
train.register(app)
show_tokens.register(app)
bench.register(app)
sweep.register(app)
report.register(app)
demo.register(app)
app.add_typer(data.app, name="data")

if __name__ == "__main__":  # pragma: no cover
    app()
