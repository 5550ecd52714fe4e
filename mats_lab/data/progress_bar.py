"""A tqdm progress bar for builds that report ``progress(done, total)`` (the embedded dataset's
generation): opened at the first report, so nothing is drawn when nothing is built."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["BuildBar"]


class BuildBar:
    """``with BuildBar("generating data/x") as bar: build(progress=bar.update)``; on stderr."""

    def __init__(self, desc: str, unit: str = "clip") -> None:
        self.desc = desc
        self.unit = unit
        self.bar: Any = None

    def update(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> BuildBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
