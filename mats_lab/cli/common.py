"""Helpers shared by the CLI commands."""

from __future__ import annotations

import ast
from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def parse_value(text: str) -> object:
    """A Python literal when it parses as one (``0.3``, ``[1, 2]``, ``None``), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_cfg_options(items: list[str]) -> dict[str, object]:
    """``['a.b=1', 'c=x']`` → ``{'a.b': 1, 'c': 'x'}``; a malformed item exits with an error."""
    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--cfg-options expects key=value, got {item!r}")
        options[key.strip()] = parse_value(value.strip())
    return options
