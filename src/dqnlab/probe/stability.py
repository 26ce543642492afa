"""Do detectors stay what they were? Unit-by-unit correlation across checkpoints.

The tutorial's explanation of why replay helps: a naive agent's feature
detectors get "yanked away" and repurposed before they mature; a replay
agent's stay. Measured here: for each hidden unit, the Pearson correlation
of its activation pattern over the probe set between consecutive
checkpoints. A unit whose correlation falls below `threshold` has been
repurposed at that interval: it now responds to different states. A unit
silent at either checkpoint has no pattern to compare and is counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dqnlab.probe.probeset import ProbeSet, activations
from dqnlab.rundir import WEIGHTS, checkpoints, load_network

THRESHOLD = 0.5


@dataclass(frozen=True)
class Stability:
    samples: tuple[int, ...]  # each checkpoint's sample count; intervals lie between neighbours
    correlations: tuple[np.ndarray, ...]  # per layer: (intervals, width), nan where a unit was silent
    threshold: float

    @property
    def repurposed(self) -> np.ndarray:
        """Repurposing events per interval and layer (intervals, layers)."""
        with np.errstate(invalid="ignore"):
            return np.stack([(c < self.threshold).sum(axis=1) for c in self.correlations], axis=1)

    @property
    def silent(self) -> np.ndarray:
        """Units without a pattern at either end of an interval (intervals, layers)."""
        return np.stack([np.isnan(c).sum(axis=1) for c in self.correlations], axis=1)

    @property
    def total(self) -> int:
        return int(self.repurposed.sum())


def stability(run_dir: str | Path, probe: ProbeSet, obs_dim: int, n_actions: int, samples_total: int | None = None,
              threshold: float = THRESHOLD) -> Stability | None:
    """The run's checkpoints (and final weights, if newer) compared in turn; None with fewer than two."""
    points = checkpoints(run_dir)
    final = Path(run_dir) / WEIGHTS
    if final.is_file() and samples_total is not None and (not points or points[-1][0] < samples_total):
        points.append((samples_total, final))
    if len(points) < 2:
        return None
    patterns = [activations(load_network(path, obs_dim, n_actions), probe.states)[0] for _, path in points]
    return compare_patterns([s for s, _ in points], patterns, threshold)


def compare_patterns(samples: list[int], patterns: list[list[np.ndarray]], threshold: float = THRESHOLD) -> Stability:
    """Stability from each checkpoint's hidden activations [checkpoint][layer] (S, width)."""
    layers = []
    for layer in range(len(patterns[0])):
        rows = []
        for before, after in zip(patterns[:-1], patterns[1:]):
            a, b = before[layer], after[layer]  # (S, width) each
            rows.append(_paired_columns(a, b))  # (width,)
        layers.append(np.stack(rows))  # (intervals, width)
    return Stability(tuple(samples), tuple(layers), threshold)


def _paired_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of column j of a with column j of b, for every j: (width,); nan if either is constant."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)  # (S, width) each
    norms = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))  # (width,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (a * b).sum(axis=0) / norms, np.nan)  # (width,)
