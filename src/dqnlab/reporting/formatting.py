"""The one way analysis shows a number, shared by the conclusion, summary.md and report.html."""

from __future__ import annotations

import math
from typing import Any

MISSING = "—"


def fmt(value: Any) -> str:
    """The one way a number is shown: 3 significant digits, thousands separators from 1,000, "—" for none.

    >>> [fmt(v) for v in (None, 10000, 635968.0, 44.10159, 0.109375, 0.5, 7.0)]
    ['—', '10,000', '635,968', '44.1', '0.109', '0.5', '7']
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return MISSING
        if abs(value) >= 999.5:  # ".3g" would write 1e+03
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def interval(value: Any, low: Any, high: Any) -> str:
    """`value [low, high]`, each through `fmt`."""
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"
