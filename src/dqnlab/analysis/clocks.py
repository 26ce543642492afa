"""One agent's clock for every run: the seconds one agent alone takes to reach a sample.

A run trained on its own core (result.json `"clock": "own"`) is its own
clock: its episodes' wall seconds. A run that shared its clock (population
members, more runs than cores) is mapped onto its variant's timing run
(OUT/clock/VARIANT.json, `experiments.clock`): the variant's first seed
trained alone on one thread in the same command. Between points the clock is
linear; past the last point (a timing run that diverged early) it goes on at
the rate of the timing run's second half.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dqnlab.errors import DqnlabError
from dqnlab.rundir.disk import read_json_object

OWN = "own clock: each run timed itself, alone on one core"


@dataclass(frozen=True)
class Clock:
    """samples -> seconds, piecewise linear through (samples, seconds) points that both increase."""

    samples: np.ndarray  # (P,) non-decreasing, from 0
    seconds: np.ndarray  # (P,) non-decreasing, from 0

    def at(self, samples) -> np.ndarray:
        """Seconds to reach `samples` (any shape)."""
        samples = np.asarray(samples, dtype=np.float64)
        inside = np.interp(samples, self.samples, self.seconds)
        return np.where(samples > self.samples[-1], self.seconds[-1] + (samples - self.samples[-1]) * self._tail_rate(), inside)

    def samples_at(self, seconds) -> np.ndarray:
        """Samples reached after `seconds` (any shape); the inverse of `at`."""
        seconds = np.asarray(seconds, dtype=np.float64)
        inside = np.interp(seconds, self.seconds, self.samples)
        rate = self._tail_rate()
        beyond = self.samples[-1] + (seconds - self.seconds[-1]) / rate if rate > 0 else self.samples[-1]
        return np.where(seconds > self.seconds[-1], beyond, inside)

    def _tail_rate(self) -> float:
        """Seconds per sample over the second half of the points' samples."""
        half = np.searchsorted(self.samples, self.samples[-1] / 2)
        span = self.samples[-1] - self.samples[half]
        return float((self.seconds[-1] - self.seconds[half]) / span) if span > 0 else 0.0


def own_clock(episodes: dict[str, np.ndarray], samples: float, wall_seconds: float) -> Clock:
    """A run's own clock: its episodes' (samples, wall seconds), from (0, 0) to its end."""
    xs = np.concatenate([[0.0], episodes["samples"], [samples]])  # (E + 2,)
    ts = np.concatenate([[0.0], episodes["wall_seconds"], [wall_seconds]])  # (E + 2,)
    return Clock(xs, np.maximum.accumulate(ts))


@dataclass(frozen=True)
class Timing:
    """A variant's timing run (OUT/clock/VARIANT.json): one agent alone, on one thread."""

    seed: int
    clock: Clock
    config: dict

    @classmethod
    def load(cls, path: Path) -> Timing | None:
        """The timing run in `path`; None if it is absent or unreadable."""
        try:
            data = read_json_object(path)  # strict: NaN, Infinity, non-UTF-8 or a non-object is unreadable
            xs, ts = np.asarray(data["samples"], dtype=np.float64), np.asarray(data["seconds"], dtype=np.float64)
            seed, config = int(data["seed"]), dict(data["config"])
        except (DqnlabError, OSError, ValueError, KeyError, TypeError):
            return None
        if xs.ndim != 1 or xs.shape != ts.shape or len(xs) < 2 or not (np.isfinite(xs).all() and np.isfinite(ts).all()):
            return None
        return cls(seed, Clock(xs, np.maximum.accumulate(ts)), config)

    @property
    def how(self) -> str:
        return f"one agent timed alone: seed {self.seed} trained again on one thread in the same command"
