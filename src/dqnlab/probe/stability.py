"""Do detectors stay what they were? Unit-by-unit correlation across checkpoints, against a matched null.

The tutorial's explanation of why replay helps: a naive agent's feature
detectors get "yanked away" and repurposed before they mature; a replay
agent's stay. Measured here, for each interval between consecutive
checkpoints: the Pearson correlation of each hidden unit's activation
pattern over the probe set at the start and at the end. A live unit whose
correlation falls below `threshold` has been repurposed at that interval.

A raw count of such units mostly tracks how far the weights moved: random
noise alone "repurposes" units. So every interval also gets a matched null:
the start network moved by Gaussian noise whose norm, tensor by tensor
(each weight matrix, each bias vector), equals that tensor's real change,
probed and counted the same way. The excess share (real share minus null
share) is what the weights' direction did beyond their distance.

Unit classes, from the activations at both ends of one comparison:

- dead: fires (> 0) on no probe state at the start, at the end, or both;
- near-silent: not dead, but fires on fewer than `NEAR_SILENT` of the probe
  states at one end or both: too few states for a stable correlation;
- live: the rest. Only live units enter the repurposed counts and shares.

The real comparison and the null are classified each on their own ends, so
the null's live units are those live between the start and the perturbed
network. A live unit that is constant over the probe set at one end (a bias
and no weights) has no correlation (nan) and is not counted repurposed.

A convolution's units are its channels (each one's largest output over
positions, `probeset.responses`); the null moves its kernels like any other
tensor.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dqnlab.engine.network import QNetwork
from dqnlab.networks import load_network
from dqnlab.probe import THRESHOLD
from dqnlab.probe.frames import screen_of
from dqnlab.probe.probeset import ProbeSet, activations
from dqnlab.rundir.layout import WEIGHTS
from dqnlab.rundir.reading import checkpoints
from dqnlab.rundir.weights import read_weights

NEAR_SILENT = 0.01  # a unit firing on < 1% of probe states (~100 of 10,000) is not counted: too few states for a correlation
NULL_SEED = 0  # interval i's noise comes from torch.Generator().manual_seed(NULL_SEED + i): the null repeats exactly
LIVE, NEAR, DEAD = 0, 1, 2  # unit classes


@dataclass(frozen=True)
class Comparison:
    """Every hidden layer's units compared between the start and the end of each interval."""

    correlations: tuple[np.ndarray, ...]  # per layer: (intervals, width); nan where a unit is constant at an end
    classes: tuple[np.ndarray, ...]  # per layer: (intervals, width) int8: LIVE, NEAR or DEAD
    threshold: float

    def _count(self, mask) -> np.ndarray:
        """Units where mask(correlations, classes) holds, per interval and layer (intervals, layers)."""
        return np.stack([mask(c, k).sum(axis=1) for c, k in zip(self.correlations, self.classes)], axis=1)

    @property
    def repurposed(self) -> np.ndarray:
        """Live units whose correlation is below the threshold (intervals, layers)."""
        with np.errstate(invalid="ignore"):
            return self._count(lambda c, k: (k == LIVE) & (c < self.threshold))

    @property
    def live(self) -> np.ndarray:
        """Live units (intervals, layers)."""
        return self._count(lambda c, k: k == LIVE)

    @property
    def near_silent(self) -> np.ndarray:
        """Near-silent units (intervals, layers)."""
        return self._count(lambda c, k: k == NEAR)

    @property
    def dead(self) -> np.ndarray:
        """Dead units (intervals, layers)."""
        return self._count(lambda c, k: k == DEAD)

    @property
    def interval_shares(self) -> np.ndarray:
        """Repurposed live units / live units, per interval, layers pooled (intervals,); nan without live units."""
        return _ratio(self.repurposed.sum(axis=1), self.live.sum(axis=1))  # (intervals,)

    @property
    def share(self) -> float:
        """Repurposed live unit-intervals / live unit-intervals, over all intervals and layers; nan without any."""
        return float(_ratio(self.repurposed.sum(), self.live.sum()))


@dataclass(frozen=True)
class Stability:
    samples: tuple[int, ...]  # each checkpoint's sample count; intervals lie between neighbours
    real: Comparison  # start vs the next checkpoint
    null: Comparison  # start vs the start moved by matched random noise
    weight_change: np.ndarray  # (intervals,): ||theta_end - theta_start|| / ||theta_start||, all parameters
    layer_weight_change: np.ndarray  # (intervals, layers): the same per layer (weight and bias), convolutions first, output layer last

    @property
    def threshold(self) -> float:
        return self.real.threshold

    @property
    def repurposed(self) -> np.ndarray:
        """Repurposed live units per interval and layer (intervals, layers)."""
        return self.real.repurposed

    @property
    def total(self) -> int:
        """Repurposed live units summed over intervals and layers."""
        return int(self.real.repurposed.sum())

    @property
    def excess_share(self) -> float:
        """Real share minus null share, both pooled over intervals and layers."""
        return self.real.share - self.null.share


def stability(run_dir: str | Path, probe: ProbeSet, obs_dim: int, n_actions: int, samples_total: int | None = None,
              threshold: float = THRESHOLD, null_seed: int = NULL_SEED, hidden: tuple[int, ...] | None = None) -> Stability | None:
    """The run's checkpoints (and final weights, if newer) compared in turn; None with fewer than two.

    `hidden`: the widths every checkpoint must have (the final network's); None takes each file's own.
    A checkpoint's convolutions are read from its file (4-D weights), the frame from the probe set's environment.
    """
    points = checkpoints(run_dir)
    final = Path(run_dir) / WEIGHTS
    if final.is_file() and samples_total is not None and (not points or points[-1][0] < samples_total):
        points.append((samples_total, final))
    if len(points) < 2:
        return None
    screen = screen_of(probe.env_id)
    frame = None if screen is None else screen.frame
    networks = [_checkpoint(path, obs_dim, n_actions, hidden, frame) for _, path in points]
    return compare_networks([s for s, _ in points], networks, probe.states, threshold, null_seed)


def _checkpoint(path: Path, obs_dim: int, n_actions: int, hidden: tuple[int, ...] | None,
                frame: tuple[int, int, int] | None) -> QNetwork:  # fmt: skip
    """A checkpoint's network; its convolutions' channels from the file, since `hidden` alone would not count them."""
    conv = read_weights(path, obs_dim, n_actions, frame=frame)[2] if frame is not None else ()
    return load_network(path, obs_dim, n_actions, hidden=hidden, conv=conv, frame=frame)


def compare_networks(samples: list[int], networks: list[QNetwork], states: np.ndarray, threshold: float = THRESHOLD,
                     null_seed: int = NULL_SEED) -> Stability:
    """Stability of consecutive networks on `states` (S, obs_dim), with interval i's null drawn from seed null_seed + i."""
    patterns = [activations(network, states)[0] for network in networks]  # [checkpoint][layer] (S, width)
    nulls, changes = [], []
    for i, (before, after) in enumerate(zip(networks[:-1], networks[1:])):
        null = matched_null(before, after, torch.Generator().manual_seed(null_seed + i))
        nulls.append(activations(null, states)[0])
        changes.append(relative_change(before, after))
    return Stability(
        tuple(samples), compare_patterns(patterns[:-1], patterns[1:], threshold), compare_patterns(patterns[:-1], nulls, threshold),
        np.array([total for total, _ in changes]), np.stack([layers for _, layers in changes]),
    )  # fmt: skip


def compare_patterns(starts: list[list[np.ndarray]], ends: list[list[np.ndarray]], threshold: float = THRESHOLD,
                     near_silent: float = NEAR_SILENT) -> Comparison:
    """Units compared between activations [interval][layer] (S, width) at each interval's start and end."""
    correlations, classes = [], []
    for layer in range(len(starts[0])):
        pairs = [(start[layer], end[layer]) for start, end in zip(starts, ends)]  # (S, width) each
        correlations.append(np.stack([paired_correlations(a, b) for a, b in pairs]))  # (intervals, width)
        classes.append(np.stack([classify(a, b, near_silent) for a, b in pairs]))  # (intervals, width)
    return Comparison(tuple(correlations), tuple(classes), threshold)


def classify(start: np.ndarray, end: np.ndarray, near_silent: float = NEAR_SILENT) -> np.ndarray:
    """Each unit's class (width,) int8 from its activations (S, width) at both ends: DEAD, NEAR or LIVE."""
    active = np.minimum((start > 0).mean(axis=0), (end > 0).mean(axis=0))  # (width,): the quieter end's share firing
    return np.where(active == 0, DEAD, np.where(active < near_silent, NEAR, LIVE)).astype(np.int8)  # (width,)


def paired_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of column j of a with column j of b, for every j: (width,); nan if either is constant."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)  # (S, width) each
    norms = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))  # (width,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (a * b).sum(axis=0) / norms, np.nan)  # (width,)


@torch.no_grad()
def matched_null(before: QNetwork, after: QNetwork, generator: torch.Generator) -> QNetwork:
    """A copy of `before` moved by Gaussian noise whose norm, tensor by tensor, equals ||after - before||.

    Same distance as the real change, in each weight matrix and bias vector, but a random direction.
    A tensor that did not change gets no noise at all (exactly zero).
    """
    null = copy.deepcopy(before)
    changed = dict(after.named_parameters())
    for name, start in null.named_parameters():
        distance = torch.linalg.vector_norm(changed[name] - start)  # ()
        noise = torch.randn(start.shape, generator=generator, dtype=start.dtype)  # same shape as the tensor
        start.add_(noise.to(start.device) * (distance / torch.linalg.vector_norm(noise)))
    return null


@torch.no_grad()
def relative_change(before: QNetwork, after: QNetwork) -> tuple[float, np.ndarray]:
    """||after - before|| / ||before|| over all parameters, and per layer (layers,) over its weight and bias."""
    moved, size = [], []
    for start, end in zip(before.layers, after.layers):
        pairs = list(zip(start.parameters(), end.parameters()))
        moved.append(sum(float(torch.sum((e - s) ** 2)) for s, e in pairs))
        size.append(sum(float(torch.sum(s**2)) for s, _ in pairs))
    moved, size = np.array(moved), np.array(size)  # (layers,) squared norms
    return float(np.sqrt(_ratio(moved.sum(), size.sum()))), np.sqrt(_ratio(moved, size))  # (layers,)


def _ratio(numerator, denominator):
    """numerator / denominator, nan where the denominator is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, np.divide(numerator, denominator), np.nan)
