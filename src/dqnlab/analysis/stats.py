"""Statistics for comparing agents over seeds: IQM, bootstrap CIs, P(X > Y).

The definitions follow rliable (Agarwal et al. 2021, "Deep Reinforcement
Learning at the Edge of the Statistical Precipice", NeurIPS), written in plain
NumPy so that the analysis needs neither SciPy nor rliable:

- the interquartile mean (IQM) is `scipy.stats.trim_mean(values, 0.25)`:
  robust to a few diverged runs, yet less noisy than the median;
- confidence intervals are percentile bootstraps over runs. rliable's
  bootstrap is "stratified": it resamples runs within each task. Our
  comparisons are on one environment, so that reduces to resampling runs;
- the probability of improvement P(X > Y) is the Mann-Whitney U statistic
  divided by n * m (ties count one half). For paired samples the paired
  win rate P(X_k > Y_k) is reported beside it, and P(X > Y) leaves out the
  same-seed pairs (`paired_probability_of_improvement_ci`);
- a family of tests is corrected by Holm-Bonferroni (`holm`).

Every function is pure. Inputs are arrays of scores with runs (seeds) on
axis 0: shape (n,) for one score per run, or (n, G) for a learning curve on G
grid points. Inputs must be finite: a NaN would silently poison a mean and
sort last in an IQM, so it is refused instead of guessed around.

Randomness comes in as an `np.random.Generator`; the default
`np.random.default_rng(0)` makes every interval repeat exactly.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from dqnlab.errors import DqnlabError

Statistic = Callable[..., np.ndarray]  # statistic(array, axis=int) -> array reduced over that axis


class StatisticsInputError(DqnlabError, ValueError):
    """Bad input to a statistic: a `ValueError` for callers, a one-line user error for the CLI."""


def _scores(values, name: str, dims: tuple[int, ...] = (1, 2)) -> np.ndarray:
    """`values` as a float array, refused when empty, non-finite or of the wrong rank."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in dims:
        allowed = " or ".join(f"{d}-D" for d in dims)
        raise StatisticsInputError(f"{name} must be {allowed} (runs on axis 0); got shape {array.shape}")
    if array.size == 0:
        raise StatisticsInputError(f"{name} is empty (shape {array.shape}); a statistic needs at least one run")
    if not np.isfinite(array).all(axis=None):
        bad = int((~np.isfinite(array)).sum(axis=None))
        raise StatisticsInputError(f"{name} holds {bad} NaN or infinite value(s); inputs must be finite")
    return array


def _check_bootstrap(reps: int, confidence: float) -> None:
    if not isinstance(reps, (int, np.integer)) or reps < 1:
        raise StatisticsInputError(f"reps must be a positive integer; got {reps!r}")
    if not 0.0 < confidence < 1.0:
        raise StatisticsInputError(f"confidence must lie strictly between 0 and 1; got {confidence!r}")


def _paired(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D score arrays paired by seed: x[k] and y[k] come from seed k."""
    x, y = _scores(x, "x", dims=(1,)), _scores(y, "y", dims=(1,))
    if x.shape != y.shape:
        raise StatisticsInputError(f"paired x and y must have the same length (one score per seed); got {x.size} and {y.size}")
    return x, y


def iqm(values, axis: int = 0) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of `values` along `axis`.

    Exactly `scipy.stats.trim_mean(values, 0.25, axis)`: sort, cut
    `int(0.25 * n)` values from each end, mean the rest. rliable (Agarwal et
    al. 2021) recommends it over the mean (swayed by a few outlier runs) and
    the median (high variance with few runs). Below n = 4 nothing is cut and
    the IQM is the mean. Values must be finite.

    >>> float(iqm([1, 2, 3, 4, 100]))  # cuts 1 and 100
    3.0
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0 or array.size == 0:
        raise StatisticsInputError(f"iqm needs a non-empty array with at least one axis; got shape {array.shape}")
    if not np.isfinite(array).all(axis=None):
        raise StatisticsInputError("iqm input holds NaN or infinite values; inputs must be finite")
    if not -array.ndim <= axis < array.ndim:
        raise StatisticsInputError(f"iqm axis {axis} is out of range for an array of shape {array.shape}")
    count = array.shape[axis]
    cut = int(0.25 * count)  # trim_mean's cut: int(), not round()
    ordered = np.sort(array, axis=axis)  # same shape as array
    middle = np.take(ordered, np.arange(cut, count - cut), axis=axis)  # axis shrinks to count - 2 * cut
    return middle.mean(axis=axis)  # array.shape without `axis`


def bootstrap_ci(values, statistic: Statistic, reps: int = 2000, confidence: float = 0.95, rng: np.random.Generator | None = None):
    """Percentile bootstrap confidence interval of `statistic` over runs.

    Calling convention: `statistic(resampled, axis=1)` is called ONCE on the
    resampled array of shape (reps, n) or (reps, n, G) and must reduce axis 1,
    returning (reps,) or (reps, G). `np.mean`, `np.median` and `iqm` all
    qualify. Each row of the (reps, n) index matrix is one bootstrap sample
    of whole runs, shared by every grid point, so a curve's points move
    together as they do across seeds. This is rliable's stratified bootstrap
    for one task. Memory: reps * n * G floats.

    Returns (low, high): NumPy scalars (shape ()) for (n,) input, arrays of
    shape (G,) for (n, G) input. The interval is the (1 - confidence) / 2 and
    (1 + confidence) / 2 percentiles of the bootstrap estimates (Efron's
    percentile method, rliable's default).
    """
    array = _scores(values, "values")
    _check_bootstrap(reps, confidence)
    rng = np.random.default_rng(0) if rng is None else rng
    count = array.shape[0]
    indices = rng.integers(0, count, size=(reps, count))  # (reps, n)
    resampled = array[indices]  # (reps, n) or (reps, n, G)
    estimates = np.asarray(statistic(resampled, axis=1))  # (reps,) or (reps, G)
    expected = (reps, *array.shape[1:])
    if estimates.shape != expected:
        raise StatisticsInputError(
            f"statistic(resampled, axis=1) must reduce the runs axis to shape {expected}; got {estimates.shape}"
        )
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(estimates, [tail, 100.0 - tail], axis=0)  # each () or (G,)
    return low, high


def _pair_scores(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """S(x_i, y_j) for every pair: 1 if x_i > y_j, 1/2 if equal, else 0. x (..., n), y (..., m) -> (..., n, m)."""
    left, right = x[..., :, None], y[..., None, :]  # (..., n, 1), (..., 1, m)
    return (left > right) + 0.5 * (left == right)  # (..., n, m)


def _improvement_score(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean of S(x_i, y_j) over all pairs; x (..., n) and y (..., m) share their leading axes; returns (...)."""
    return _pair_scores(x, y).mean(axis=(-2, -1))  # (...)


def probability_of_improvement(x, y) -> float:
    """P(X > Y) for one task: how often a run of X beats a run of Y.

    rliable (Agarwal et al. 2021, section 4.3) defines it as the Mann-Whitney
    U statistic over n * m: the mean over all pairs (i, j) of S(x_i, y_j),
    with S = 1 if x_i > y_j, 1/2 on a tie, 0 otherwise. It says nothing about
    how much better, only how often; 0.5 means no difference. x (n,) and
    y (m,) may have different lengths.
    """
    x, y = _scores(x, "x", dims=(1,)), _scores(y, "y", dims=(1,))
    return float(_improvement_score(x, y))


def _bootstrap_interval(estimates: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(estimates, [tail, 100.0 - tail], axis=0)  # (), ()
    return float(low), float(high)


def paired_win_rate_ci(
    x, y, reps: int = 2000, confidence: float = 0.95, rng: np.random.Generator | None = None
) -> tuple[float, float, float]:
    """The paired estimand P(X_k > Y_k): how often, seed by seed, x beat its own pair y; ties count one half.

    Our variants share seeds (a seed fixes the initial weights and every
    environment start), so this is the comparison the design makes. Its CI is
    a percentile bootstrap over seeds; the estimate is a mean over seeds, so
    its bootstrap distribution centres on it. Should the percentiles still
    leave the estimate out (a very skewed case), the interval is widened to
    reach it. Returns (estimate, low, high).
    """
    x, y = _paired(x, y)
    _check_bootstrap(reps, confidence)
    rng = np.random.default_rng(0) if rng is None else rng
    score = (x > y) + 0.5 * (x == y)  # (n,)
    indices = rng.integers(0, score.shape[0], size=(reps, score.shape[0]))  # (reps, n)
    low, high = _bootstrap_interval(score[indices].mean(axis=1), confidence)  # (reps,) -> (), ()
    return float(score.mean()), min(low, float(score.mean())), max(high, float(score.mean()))


def _cross_seed_score(x: np.ndarray, y: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Mean of S(x_i, y_j) over pairs from different seeds (seeds[i] != seeds[j]).

    x, y, seeds: (..., n), the seeds being the original indices; returns (...),
    NaN where every pair shares a seed.
    """
    score = _pair_scores(x, y)  # (..., n, n)
    apart = seeds[..., :, None] != seeds[..., None, :]  # (..., n, n)
    with np.errstate(invalid="ignore"):
        return (score * apart).sum(axis=(-2, -1)) / apart.sum(axis=(-2, -1))  # (...)


def paired_probability_of_improvement_ci(
    x, y, reps: int = 2000, confidence: float = 0.95, rng: np.random.Generator | None = None
) -> tuple[float, float, float]:
    """P(X > Y), a run of X against an independent run of Y, from paired samples, with a bootstrap CI.

    x[k] and y[k] share seed k, so comparing them is no independent draw: the
    estimate is the Mann-Whitney score over pairs of *different* seeds only
    (the two-sample U-statistic with the paired diagonal left out), and each
    bootstrap replicate, which resamples seeds keeping x[k] and y[k] together,
    likewise compares only draws of different original seeds. Comparing a
    seed with itself in the replicates would weigh the paired outcome into an
    estimate that leaves it out, and the interval could then miss its own
    estimate (x = y + 0.5 over 10 seeds: an estimate of 0.55 with the diagonal,
    a CI of [0.57, 0.64]); this way the estimate is 0.5 and its CI [0.5, 0.5].
    Should the percentiles still leave the estimate out (a very skewed case),
    the interval is widened to reach it. Returns (estimate, low, high); the
    interval is NaN for a single seed.
    Memory: reps * n * n booleans.
    """
    x, y = _paired(x, y)
    _check_bootstrap(reps, confidence)
    rng = np.random.default_rng(0) if rng is None else rng
    count = x.shape[0]
    estimate = float(_cross_seed_score(x, y, np.arange(count)))
    if count < 2:
        return estimate, math.nan, math.nan
    indices = rng.integers(0, count, size=(reps, count))  # (reps, n): one draw of seeds per row
    estimates = _cross_seed_score(x[indices], y[indices], indices)  # (reps,), NaN if a row drew one seed n times
    low, high = _bootstrap_interval(estimates[np.isfinite(estimates)], confidence)
    return estimate, min(low, estimate), max(high, estimate)


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values for one family of tests: (m,) -> (m,).

    Sort ascending; the i-th smallest (0-based) is multiplied by m - i, then
    made non-decreasing along the order and capped at 1. Rejecting where the
    adjusted p < alpha keeps the chance of any false verdict in the family at
    most alpha, whatever the tests' dependence.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or not np.isfinite(p).all() or ((p < 0) | (p > 1)).any():
        raise StatisticsInputError(f"holm needs a 1-D array of p-values in [0, 1]; got {pvalues!r}")
    order = np.argsort(p, kind="stable")  # (m,)
    scaled = p[order] * (len(p) - np.arange(len(p)))  # (m,)
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)  # (m,)
    result = np.empty_like(p)
    result[order] = adjusted
    return result


def wins(x, y) -> tuple[int, int, int]:
    """Paired counts (x wins, y wins, ties) over seeds: x[k] against y[k].

    A plain tally to print beside P(X > Y): "X beat Y on 7 of 10 seeds" is
    what a reader checks first.
    """
    x, y = _paired(x, y)
    x_wins = int((x > y).sum(axis=0))
    y_wins = int((x < y).sum(axis=0))
    return x_wins, y_wins, x.shape[0] - x_wins - y_wins


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test: P(a split at least this uneven | each seed a fair coin); ties dropped.

    A guard for small seed counts, where percentile bootstrap intervals are
    too narrow: 3 wins of 3 seeds gives p = 0.25, not evidence.
    """
    if wins < 0 or losses < 0:
        raise StatisticsInputError(f"win and loss counts must be >= 0; got {wins}, {losses}")
    n = wins + losses
    if n == 0:
        return 1.0
    extreme = min(wins, losses)
    tail = sum(math.comb(n, k) for k in range(extreme + 1)) / 2**n
    return min(1.0, 2 * tail)


def aggregate(values, reps: int = 2000, rng: np.random.Generator | None = None, confidence: float = 0.95) -> dict:
    """Mean and IQM over runs, each with its percentile bootstrap CI.

    Shape contract: `values` is (n,) (one final score per run) or (n, G) (a
    curve per run on G shared grid points); runs are on axis 0. For (n,) the
    six statistics are floats; for (n, G) they are lists of G floats, ready to
    write as JSON. "n" is the number of runs. Both intervals draw from the
    same generator, one after the other, so a given `rng` seed repeats.
    """
    array = _scores(values, "values")
    rng = np.random.default_rng(0) if rng is None else rng
    mean_low, mean_high = bootstrap_ci(array, np.mean, reps, confidence, rng)
    iqm_low, iqm_high = bootstrap_ci(array, iqm, reps, confidence, rng)
    summary = {
        "mean": array.mean(axis=0),  # () or (G,)
        "mean_low": mean_low,
        "mean_high": mean_high,
        "iqm": iqm(array, axis=0),  # () or (G,)
        "iqm_low": iqm_low,
        "iqm_high": iqm_high,
    }
    plain = {key: (float(value) if array.ndim == 1 else np.asarray(value).tolist()) for key, value in summary.items()}
    return {**plain, "n": int(array.shape[0])}
