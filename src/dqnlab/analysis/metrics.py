"""Per-run measures of learning, as pure functions of a run's episode arrays.

Unwrapped CartPole's episodes have no end: a good agent's last episode may
run for most of the budget and never finish. A measure that credits an
episode only when it ends (its score) is then censored: it misses the best
stretch, or counts a lower bound as if exact. The per-sample and per-second
measures here count every sample instead: a *failure* is an episode the
environment terminated (on CartPole, the pole fell or the cart left the
track; a time limit's truncation is no failure), and a run is measured by its
failures per 1,000 samples over a stretch of samples. An unfinished episode's
samples are in the stretch and add no failure, so a long last episode counts
fully. The reciprocal, samples per failure, is the mean episode length.

Per episode, the measure stays the score: the first N episodes have all
finished, whoever plays them.
"""

from __future__ import annotations

import math

import numpy as np

CURVE_WINDOW = 10  # episodes in the per-episode curve's moving average
PER = 1000.0  # failure rates are per this many samples
FINAL_FRACTION = 0.2  # "final": the last 20% of the budget (or of the common time window)
RATE_WINDOWS = 20  # the per-sample curve's trailing window and the drawdown's windows: budget / 20 samples
FORGETTING_LOW = 12  # a score this low after reaching FORGETTING_REACHED is a collapse (9 is the floor)
FORGETTING_REACHED = 200
REACH_THRESHOLDS = (200, 500)  # the scores whose first reaching the report shows (engine.records.REACH_SCORES)


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


def episode_mean(scores: np.ndarray, count: int) -> float:
    """Mean score of the first `count` episodes: the per-episode comparison at a common episode count."""
    return float(scores[:count].mean()) if 0 < count <= len(scores) else math.nan


def failure_samples(ends: np.ndarray, terminated: np.ndarray) -> np.ndarray:
    """The samples at which failures happened: ends (E,) of the episodes the environment terminated -> (F,)."""
    return ends[terminated > 0]  # (F,)


def failure_rate(failures: np.ndarray, start: float, end: float) -> float:
    """Failures per 1,000 samples among samples (start, end]; NaN for an empty stretch."""
    if not end > start:
        return math.nan
    count = np.searchsorted(failures, end, side="right") - np.searchsorted(failures, start, side="right")
    return float(count) * PER / (end - start)


def rate_curve(failures: np.ndarray, grid: np.ndarray, window: float) -> np.ndarray:
    """Failures per 1,000 samples over the trailing `window` samples at each grid point: (G,).

    Near the start the window is (0, g]; NaN at g = 0.
    """
    starts = np.maximum(grid - window, 0.0)  # (G,)
    counts = np.searchsorted(failures, grid, side="right") - np.searchsorted(failures, starts, side="right")  # (G,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(grid > starts, counts * PER / (grid - starts), np.nan)  # (G,)


def collapse_rate(ends: np.ndarray, scores: np.ndarray, reached_at: float, budget: float, low: float = FORGETTING_LOW) -> float:
    """Collapses (episodes scoring <= `low`) per 1,000 samples after the run first reached 200.

    `reached_at` is the sample at which the running episode first scored 200
    (NaN if it never did: the measure is then undefined, NaN). Counted over the
    samples (reached_at, budget]; an episode counts if it ended there.
    """
    if not math.isfinite(reached_at) or reached_at >= budget:
        return math.nan
    collapses = int(((ends > reached_at) & (scores <= low)).sum())
    return collapses * PER / (budget - reached_at)


def relative_drawdown(failures: np.ndarray, budget: float, windows: int = RATE_WINDOWS) -> float:
    """Largest relative fall of samples per failure below its running peak, over `windows` equal windows.

    The budget is cut into windows of equal samples; in each, samples per
    failure is the window's length over its failure count, a window without
    failure counting as one failure (so a fall from none to one failure is no
    fall). Returns max over windows of 1 - value / (best value so far): 0 when
    the run never got worse, 0.9 when it went from one failure per window to
    ten. In [0, 1).
    """
    edges = np.linspace(0.0, budget, windows + 1)  # (W + 1,)
    counts = np.diff(np.searchsorted(failures, edges, side="right"))  # (W,) failures in (edges[i], edges[i+1]]
    per_failure = 1.0 / np.maximum(counts, 1)  # (W,) in units of one window's samples
    peak = np.maximum.accumulate(per_failure)  # (W,)
    return float((1.0 - per_failure / peak).max())


def first_reach(reached: dict, score: float) -> tuple[float, float]:
    """(samples, seconds) at which the running episode first reached `score`, from result.json; inf if never."""
    entry = reached.get(f"{score:g}") if isinstance(reached, dict) else None
    if not isinstance(entry, dict):
        return math.inf, math.inf
    return float(entry.get("samples", math.inf)), float(entry.get("wall_seconds", math.inf))
