"""Paired comparisons of two variants over the seeds both ran, with one Holm-Bonferroni family per pair.

For each pair of variants and each compared measure: the paired win rate
P(b_k better than a_k) over seeds, the probability of improvement P(b better
than a) between runs of different seeds, the paired wins and an exact sign
test. The sign tests of one pair's measures form one family, adjusted by
Holm-Bonferroni; a verdict needs an adjusted p below 0.05 and names the
variant that won more seeds.

A run that diverged stands in every comparison as the worst outcome (it
loses to any finished run and ties another diverged one); a pair where a
measure is undefined for either run (for CartPole's collapses, a run that
never reached 200) is left out of that measure, and the rows count both.
The compared measures, and which way each is better, are the profile's
(`analysis.measures.measures_for`; CartPole's when none is given).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dqnlab.analysis import stats
from dqnlab.analysis.measures import CARTPOLE_MEASURES, MeasureSet

SIGNIFICANCE = 0.05  # the Holm-adjusted sign test's level for a verdict

Values = dict[tuple[str, int], dict[str, float]]  # (variant, seed) -> measure -> value


def comparisons(names: list[str], per_run: Values, diverged: set[tuple[str, int]],
                measured: MeasureSet = CARTPOLE_MEASURES) -> list[dict[str, Any]]:  # fmt: skip
    """Rows for every pair (a, b) of variants, a before b in `names`, and every compared measure."""
    rows = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            rows += _pair(first, second, per_run, diverged, measured)
    return rows


def _pair(a: str, b: str, per_run: Values, diverged: set[tuple[str, int]], measured: MeasureSet) -> list[dict[str, Any]]:
    ran = {key for key in per_run} | diverged
    seeds = sorted({s for v, s in ran if v == a} & {s for v, s in ran if v == b})
    rows = []
    for key in measured.compared:
        higher = bool(measured.measures[key][2])
        x = np.array([_better_is_higher(per_run, diverged, (b, s), key, higher) for s in seeds])  # (n,)
        y = np.array([_better_is_higher(per_run, diverged, (a, s), key, higher) for s in seeds])  # (n,)
        keep = ~(np.isnan(x) | np.isnan(y))  # (n,) a diverged run is -inf here, not NaN
        if not keep.any() or not any(math.isfinite(per_run.get((v, s), {}).get(key, math.nan)) for v in (a, b) for s in seeds):
            continue  # nothing to compare, or nobody measured it (e.g. no checkpoints for repurposing)
        x_ranked, y_ranked = _finite_ranks(x[keep], y[keep])  # (n',) each, same order and ties
        win, win_low, win_high = stats.paired_win_rate_ci(x_ranked, y_ranked)
        p, low, high = stats.paired_probability_of_improvement_ci(x_ranked, y_ranked)
        b_wins, a_wins, ties = stats.wins(x_ranked, y_ranked)
        pairs_diverged = sum((a, s) in diverged or (b, s) in diverged for s, k in zip(seeds, keep) if k)
        rows.append({
            "a": a, "b": b, "measure": key, "n_pairs": int(keep.sum()), "diverged_pairs": int(pairs_diverged),
            "undefined_pairs": int((~keep).sum()),
            "win_rate": win, "win_low": win_low, "win_high": win_high,
            "p_b_better": p, "low": low, "high": high,
            "b_wins": b_wins, "a_wins": a_wins, "ties": ties, "sign_test_p": stats.sign_test(b_wins, a_wins),
        })  # fmt: skip
    if rows:
        for row, adjusted in zip(rows, stats.holm([row["sign_test_p"] for row in rows])):
            row["holm_p"] = float(adjusted)
            clear = adjusted < SIGNIFICANCE and row["b_wins"] != row["a_wins"]
            row["verdict"] = (b if row["b_wins"] > row["a_wins"] else a) if clear else "inconclusive"
    return rows


def _better_is_higher(per_run: Values, diverged: set[tuple[str, int]], key: tuple[str, int], measure: str,
                      higher: bool) -> float:  # fmt: skip
    """The run's value, negated unless `higher` is better; -inf for a diverged run (the worst), NaN where undefined."""
    if key in diverged:
        return -math.inf
    value = per_run.get(key, {}).get(measure, math.nan)
    return value if higher else -value


def _finite_ranks(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y with -inf (a diverged run) moved just below every finite value.

    The statistics here depend on order and ties alone, which this keeps.
    """
    both = np.concatenate([x, y])  # (2n,)
    finite = both[np.isfinite(both)]
    floor = (finite.min() if len(finite) else 0.0) - 1.0
    return np.where(np.isneginf(x), floor, x), np.where(np.isneginf(y), floor, y)


def find(rows: list[dict], a: str, b: str, measure: str) -> dict | None:
    return next((r for r in rows if r["a"] == a and r["b"] == b and r["measure"] == measure), None)
