"""Per-run measures of learning, as pure functions of a run's episode arrays.

Every episode has an end coordinate on each of the tutorial's three axes:
its index (per episode), the samples at its end (per sample) and the wall
seconds at its end (per second). A run's curve on an axis is the mean score
of its last `CURVE_WINDOW` finished episodes at each grid point (NaN before
its first episode ends); on the seconds axis a run that has finished holds
its last value: that is the agent one would have at that time.
"""

from __future__ import annotations

import numpy as np

CURVE_WINDOW = 10  # episodes in a curve point's moving average
FINAL_FRACTION = 0.2  # "final score": episodes finished in the last 20% of the budget
DRAWDOWN_WINDOW = 20  # episodes in the moving average whose falls measure forgetting
FORGETTING_LOW = 12  # a score this low after reaching 200 is a collapse (9 is the floor)
REACH_THRESHOLDS = (200, 500)


def trailing_mean(scores: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` scores at each episode (fewer at the start): (E,) -> (E,)."""
    cumulative = np.concatenate([[0.0], np.cumsum(scores)])  # (E + 1,)
    ends = np.arange(1, len(scores) + 1)  # (E,)
    starts = np.maximum(ends - window, 0)  # (E,)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)  # (E,)


def curve(ends: np.ndarray, scores: np.ndarray, grid: np.ndarray, window: int = CURVE_WINDOW) -> np.ndarray:
    """The trailing-mean score of the last episode ending at or before each grid point: (G,), NaN before any."""
    smoothed = trailing_mean(scores, window)  # (E,)
    last = np.searchsorted(ends, grid, side="right") - 1  # (G,) index of the last finished episode
    values = np.full(grid.shape, np.nan)  # (G,)
    known = last >= 0  # (G,)
    values[known] = smoothed[last[known]]
    return values


def final_score(samples_end: np.ndarray, scores: np.ndarray, budget: int, unfinished_score: float) -> tuple[float, bool]:
    """Mean score of episodes finished in the last 20% of the budget.

    If none finished there (one episode outlasted the whole window), the
    episode still running at the end is counted by its score so far, a lower
    bound; the flag says so.
    """
    in_window = samples_end > (1 - FINAL_FRACTION) * budget  # (E,)
    if in_window.any():
        return float(scores[in_window].mean()), False
    return float(unfinished_score), True


def area_under_curve(ends: np.ndarray, scores: np.ndarray, limit: float, points: int = 200) -> float:
    """Normalized area under the curve over [0, limit]: the curve's mean there (0 before any episode ends).

    On the samples axis with limit = budget this is sample efficiency; on the
    seconds axis with a common limit, score per wall-clock second.
    """
    grid = np.linspace(limit / points, limit, points)  # (G,)
    return float(np.nan_to_num(curve(ends, scores, grid), nan=0.0).mean())


def first_reach(scores: np.ndarray, coordinate: np.ndarray, threshold: float) -> float:
    """The coordinate (samples or seconds) at the end of the first episode scoring >= threshold; inf if never."""
    hits = np.flatnonzero(scores >= threshold)  # (H,)
    return float(coordinate[hits[0]]) if len(hits) else float("inf")


def collapse_share(scores: np.ndarray, reached: float = 200, low: float = FORGETTING_LOW) -> float:
    """Share of episodes scoring <= `low` after the run first reached `reached`; NaN if it never did."""
    hits = np.flatnonzero(scores >= reached)  # (H,)
    if not len(hits) or hits[0] + 1 >= len(scores):
        return float("nan")
    after = scores[hits[0] + 1 :]  # (A,)
    return float((after <= low).mean())


def largest_drawdown(scores: np.ndarray, window: int = DRAWDOWN_WINDOW) -> float:
    """Largest fall of the `window`-episode moving average below its running peak; NaN if too few episodes."""
    if len(scores) < window:
        return float("nan")
    moving = np.convolve(scores, np.ones(window) / window, mode="valid")  # (E - window + 1,)
    return float((np.maximum.accumulate(moving) - moving).max())


def episode_mean(scores: np.ndarray, count: int) -> float:
    """Mean score of the first `count` episodes: the per-episode comparison at a common episode count."""
    return float(scores[:count].mean())
