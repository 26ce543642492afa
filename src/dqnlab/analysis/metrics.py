"""Per-run measures of learning, as pure functions of a run's episode arrays.

Two families, one per profile's `measured_by` (`config.profiles`).

Failures (CartPole). Unwrapped CartPole's episodes have no end: a good
agent's last episode may run for most of the budget and never finish. A
measure that credits an episode only when it ends (its score) is then
censored: it misses the best stretch, or counts a lower bound as if exact.
The per-sample and per-second measures here count every sample instead: a
*failure* is an episode the environment terminated (on CartPole, the pole
fell or the cart left the track; a time limit's truncation is no failure),
and a run is measured by its failures per 1,000 samples over a stretch of
samples. An unfinished episode's samples are in the stretch and add no
failure, so a long last episode counts fully. The reciprocal, samples per
failure, is the mean episode length.

Returns (everything else: Acrobot, MountainCar, MinAtar ...). A termination
is the goal reached or the game over, so counting terminations says nothing
of how well it went; the return (an episode's summed reward) does. These
measures read the returns of finished episodes, placed at the sample where
each ended: the return curve over equal windows of samples
(`return_curve`), its mean (the area under it per sample), its falls below
its running best, and the first sample where the mean return of the last
`REACH_EPISODES` finished episodes reached a target.

Per episode, the measure stays the score (the return): the first N episodes
have all finished, whoever plays them.
"""

from __future__ import annotations

import math

import numpy as np

from dqnlab.config.profiles import REACH_EPISODES

CURVE_WINDOW = 10  # episodes in the per-episode curve's moving average
PER = 1000.0  # failure rates are per this many samples
FINAL_FRACTION = 0.2  # "final": the last 20% of the budget (or of the common time window)
RATE_WINDOWS = 20  # the per-sample curves' trailing window, the drawdowns' and the return curve's windows: budget / 20 samples


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


def collapse_rate(ends: np.ndarray, scores: np.ndarray, reached_at: float, budget: float, low: float) -> float:
    """Collapses (episodes scoring <= `low`) per 1,000 samples after the run first reached its first target.

    `reached_at` is the sample at which the running episode first reached the
    target (CartPole: 200; inf or NaN if it never did: the measure is then
    undefined, NaN). Counted over the samples (reached_at, budget]; an episode
    counts if it ended there.
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


# ---------------------------------------------------------------- returns


def episodes_in(ends: np.ndarray, start: float, end: float) -> np.ndarray:
    """Which episodes ended in samples (start, end]: ends (E,) -> (E,) booleans."""
    return (ends > start) & (ends <= end)  # (E,)


def final_return(ends: np.ndarray, returns: np.ndarray, start: float, end: float) -> float:
    """Mean return of the episodes that ended in samples (start, end]; NaN if none did."""
    inside = episodes_in(ends, start, end)  # (E,)
    return float(returns[inside].mean()) if inside.any() else math.nan


def return_curve(ends: np.ndarray, returns: np.ndarray, end: float, windows: int = RATE_WINDOWS) -> np.ndarray:
    """The return curve over samples (0, end]: one value per window of equal samples, (W,).

    Window i holds samples (i * end / W, (i + 1) * end / W], and its value is
    the mean return of the episodes that ended in it. A window in which no
    episode ended carries the last known value forward (the agent is still
    the one last measured); windows before the first one in which an episode
    ended take that first window's value. Episodes ending after `end` are left
    out. All NaN when no episode ended in (0, end].
    """
    edges = np.linspace(0.0, end, windows + 1)  # (W + 1,)
    inside = episodes_in(ends, 0.0, end)  # (E,)
    window = np.searchsorted(edges, ends[inside], side="left") - 1  # (E',) edges[i] < end_of_episode <= edges[i + 1]
    totals = np.bincount(window, weights=returns[inside], minlength=windows)  # (W,)
    counts = np.bincount(window, minlength=windows)  # (W,)
    ended = counts > 0  # (W,)
    if not ended.any():
        return np.full(windows, np.nan)  # (W,)
    means = np.where(ended, totals / np.maximum(counts, 1), np.nan)  # (W,)
    last = np.maximum.accumulate(np.where(ended, np.arange(windows), -1))  # (W,) last window with episodes, so far
    return means[np.where(last >= 0, last, np.argmax(ended))]  # (W,) carried forward, backfilled at the start


def curve_area(curve: np.ndarray) -> float:
    """Area under a return curve of equal windows, per sample: the mean of its window values (NaN for none)."""
    return float(np.mean(curve)) if np.isfinite(curve).all() else math.nan


def falls(curve: np.ndarray) -> np.ndarray:
    """How far each window's value lies below the best value so far (0 at a new best): (W,) -> (W,)."""
    return np.maximum.accumulate(curve) - curve  # (W,)


def return_drawdown(curve: np.ndarray) -> float:
    """The largest fall of a return curve below its running best, in return units; NaN for an empty curve."""
    return float(falls(curve).max()) if np.isfinite(curve).all() else math.nan


def return_shortfall(curve: np.ndarray) -> float:
    """The mean fall of a return curve below its running best over its windows, in return units; NaN for an empty curve."""
    return float(falls(curve).mean()) if np.isfinite(curve).all() else math.nan


def episodes_reach(ends: np.ndarray, returns: np.ndarray, target: float, count: int = REACH_EPISODES) -> float:
    """The sample at which the mean return of the last `count` finished episodes first reached `target`; inf if never.

    That is the end of the first episode i >= count - 1 (0-based) whose
    episodes i - count + 1 .. i have a mean return >= target. An episode's
    return is known only when it ends, so the sample is that episode's end.
    """
    if len(returns) < count:
        return math.inf
    means = np.lib.stride_tricks.sliding_window_view(returns, count).mean(axis=1)  # (E - count + 1,) episode i is row i - count + 1
    reached = np.flatnonzero(means >= target)  # (R,)
    return float(ends[reached[0] + count - 1]) if len(reached) else math.inf


def trailing_return(ends: np.ndarray, returns: np.ndarray, grid: np.ndarray, window: float) -> np.ndarray:
    """Mean return of the episodes that ended in the trailing `window` samples (g - window, g] at each grid point: (G,).

    Near the start the window is (0, g]; NaN where no episode ended in it.
    """
    starts = np.maximum(grid - window, 0.0)  # (G,)
    cumulative = np.concatenate([[0.0], np.cumsum(returns)])  # (E + 1,)
    upto_end = np.searchsorted(ends, grid, side="right")  # (G,) episodes ended at or before g
    upto_start = np.searchsorted(ends, starts, side="right")  # (G,) episodes ended at or before g - window
    counts = upto_end - upto_start  # (G,)
    totals = cumulative[upto_end] - cumulative[upto_start]  # (G,)
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)  # (G,)


def terminated_share(ends: np.ndarray, terminated: np.ndarray, start: float, end: float) -> float:
    """Share of the episodes that ended in samples (start, end] that the environment terminated; NaN if none ended.

    Where a termination is the goal (Acrobot, MountainCar), the share that reached it; the rest hit the time limit.
    """
    inside = episodes_in(ends, start, end)  # (E,)
    return float((terminated[inside] > 0).mean()) if inside.any() else math.nan
