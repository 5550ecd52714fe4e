"""Cell values as text: the one rule every report table uses for a missing value (None,
``pd.NA`` or NaN reads as an empty cell)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["cell_text", "missing"]


def missing(value: Any) -> bool:
    """True for None, ``pd.NA`` and a float NaN."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def cell_text(value: Any) -> str:
    """``value`` as text, ``""`` where it is :func:`missing`."""
    return "" if missing(value) else str(value)
