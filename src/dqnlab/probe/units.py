"""Per-unit statistics on a probe set, and descriptions in plain words.

A unit is a fully connected layer's output, or a convolution's channel (its
largest output over positions: `probeset.responses`). For every hidden unit
of every layer:

- `active`: the share of probe states on which it fires (> 0); a unit that
  never fires is dead;
- `selectivity`: lifetime sparsity (Treves & Rolls 1991), 0 for a unit that
  responds equally to every state, 1 for one that responds to a single state;
- `top`: the states that drive it hardest; for a channel, `positions`: where
  in each of them it fired hardest;
- `correlations`: Pearson correlation of its activation with each state
  variable and with the network's preference (Q(right) - Q(left) on
  CartPole; for more actions, the best action's lead over the mean). For
  image observations the state variables are each channel's count of lit
  cells (`frames.channel_counts`): how much of each object is on screen;
- `effect`: for the last hidden layer (fully connected), what one unit of its
  activation adds to each action's Q-value (its outgoing weights): the unit's vote.

A description names the state variables that explain the unit (|r| >= 0.3,
strongest first) and which way it pushes the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dqnlab.engine.network import QNetwork

if TYPE_CHECKING:
    from dqnlab.probe.frames import Screen

CARTPOLE_VARIABLES = ("cart position", "cart velocity", "pole angle", "pole angular velocity")
# (when high, when low): CartPole's positive directions are to the right
CARTPOLE_WORDS = (
    ("the cart is right of centre", "the cart is left of centre"),
    ("the cart moves right", "the cart moves left"),
    ("the pole leans right", "the pole leans left"),
    ("the pole falls right", "the pole falls left"),
)
EXPLAINS = 0.3  # |r| from which a state variable explains a unit
TOP_K = 16


@dataclass(frozen=True)
class UnitStats:
    layer: int
    unit: int
    active: float  # share of probe states where activation > 0
    mean: float
    max: float
    selectivity: float  # lifetime sparsity in [0, 1]; nan for a dead unit
    correlations: tuple[float | None, ...]  # with each state variable; None when undefined
    preference: float | None  # correlation with the network's preference
    effect: tuple[float, ...] | None  # outgoing weight to each Q-value (last hidden layer only)
    top: tuple[int, ...]  # probe-state indices, most active first
    positions: tuple[tuple[int, int], ...] | None = None  # a channel's (row, column) of its largest output in each top state

    @property
    def dead(self) -> bool:
        return self.active == 0.0

    @property
    def key(self) -> str:
        return f"L{self.layer}.{self.unit}"


def preference(q: np.ndarray) -> np.ndarray:
    """The network's preference per state (S,): Q(right) - Q(left) with two actions, else max - mean."""
    if q.shape[1] == 2:
        return q[:, 1] - q[:, 0]  # (S,)
    return q.max(axis=1) - q.mean(axis=1)  # (S,)


def unit_stats(network: QNetwork, hidden: list[np.ndarray], states: np.ndarray, q: np.ndarray,
               positions: list[np.ndarray | None] | None = None) -> list[list[UnitStats]]:  # fmt: skip
    """Statistics of every unit: [layer][unit].

    `states` (S, n): the state variables to correlate with: the observations, or for frames their channel
    counts. `positions`: per layer, a convolution's (S, channels, 2) from `probeset.responses`, else None.
    """
    pref = preference(q)  # (S,)
    out_weights = network.layers[-1].weight.detach().cpu().numpy()  # (A, last width)
    positions = positions or [None] * len(hidden)
    layers = []
    for layer, acts in enumerate(hidden):  # acts: (S, width)
        corr_states = correlate(acts, states)  # (width, n variables)
        corr_pref = correlate(acts, pref[:, None])[:, 0]  # (width,)
        sparsity = lifetime_sparsity(acts)  # (width,)
        top = np.argsort(-acts, axis=0, kind="stable")[:TOP_K].T  # (width, K)
        last = layer == len(hidden) - 1 and out_weights.shape[1] == acts.shape[1]  # a convolution's channels cast no single vote
        where = positions[layer]  # (S, width, 2) or None
        layers.append([
            UnitStats(
                layer, j, float((acts[:, j] > 0).mean()), float(acts[:, j].mean()), float(acts[:, j].max()),
                float(sparsity[j]), tuple(_finite(r) for r in corr_states[j]), _finite(corr_pref[j]),
                tuple(float(w) for w in out_weights[:, j]) if last else None,
                tuple(int(i) for i in top[j]) if acts[:, j].max() > 0 else (),
                None if where is None or acts[:, j].max() <= 0 else tuple((int(r), int(c)) for r, c in where[top[j], j]),
            )
            for j in range(acts.shape[1])
        ])  # fmt: skip
    return layers


def correlate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlations between the columns of a (S, m) and b (S, n): (m, n); nan where a column is constant."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)  # (S, m), (S, n)
    norms = np.outer(np.sqrt((a * a).sum(axis=0)), np.sqrt((b * b).sum(axis=0)))  # (m, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (a.T @ b) / norms, np.nan)  # (m, n)


def lifetime_sparsity(acts: np.ndarray) -> np.ndarray:
    """Treves-Rolls sparsity per column of (S, width): (1 - mean^2 / mean(a^2)) / (1 - 1/S); nan if never active."""
    s = acts.shape[0]
    mean, square = acts.mean(axis=0), (acts * acts).mean(axis=0)  # (width,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(square > 0, (1 - mean * mean / square) / (1 - 1 / s), np.nan)  # (width,)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def describe(unit: UnitStats, env_id: str, n_actions: int, screen: Screen | None = None) -> str:
    """The unit in words, from its numbers; `screen` for image observations (its correlations are with channel counts)."""
    if unit.dead:
        return "never fires on the probe set (dead)"
    cartpole = env_id.startswith("CartPole")
    explained = sorted(
        ((abs(r), i, r) for i, r in enumerate(unit.correlations) if r is not None and abs(r) >= EXPLAINS), reverse=True
    )[:3]
    if explained and screen is not None:
        fires = "fires more with " + _join([_count_words(screen.channels[i], r) for _, i, r in explained])
    elif explained:
        words = [_variable_words(i, r, cartpole) for _, i, r in explained]
        fires = "fires when " + _join(words)
    elif screen is not None:
        fires = f"fires on a mix of states (no channel's count of lit cells has |r| >= {EXPLAINS})"
    else:
        fires = f"fires on a mix of states (no single state variable has |r| >= {EXPLAINS})"
    return fires + _vote(unit, cartpole, n_actions, None if screen is None else screen.actions)


def _variable_words(index: int, r: float, cartpole: bool) -> str:
    if cartpole and index < len(CARTPOLE_WORDS):
        return CARTPOLE_WORDS[index][0 if r > 0 else 1]
    return f"observation[{index}] is {'high' if r > 0 else 'low'}"


def _count_words(channel: str, r: float) -> str:
    """A channel count's correlation in words: "more ball cells lit (r = +0.52)"."""
    return f"{'more' if r > 0 else 'fewer'} {channel.replace('_', ' ')} cells lit (r = {r:+.2f})"


def _vote(unit: UnitStats, cartpole: bool, n_actions: int, actions: tuple[str, ...] | None = None) -> str:
    """Which way the unit pushes: its outgoing weights (last layer) or its correlation with the preference."""
    names = ("left", "right") if cartpole and n_actions == 2 else actions or tuple(str(a) for a in range(n_actions))
    if unit.effect is not None:
        best = int(np.argmax(unit.effect))
        if n_actions == 2 and abs(unit.effect[1] - unit.effect[0]) > 1e-6:
            best = 1 if unit.effect[1] > unit.effect[0] else 0
            return f"; raises Q({names[best]}) over Q({names[1 - best]})"
        if not cartpole and unit.effect[best] <= 0:  # every weight out is negative: it raises none of them
            return f"; lowers every Q-value, Q({names[best]}) least"
        return f"; raises Q({names[best]}) most"
    if unit.preference is not None and abs(unit.preference) >= EXPLAINS and n_actions == 2:
        return f"; goes with preferring {names[1] if unit.preference > 0 else names[0]}"
    return ""


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def strongest(layers: list[list[UnitStats]], count: int = 5) -> list[UnitStats]:
    """The units most tied to the decision: largest |correlation with the preference|."""
    units = [u for layer in layers for u in layer if u.preference is not None]
    return sorted(units, key=lambda u: -abs(u.preference))[:count]


def most_selective(layers: list[list[UnitStats]], count: int = 6, floor: float = 0.01) -> list[UnitStats]:
    """The most selective live units (firing on at least `floor` of the states, so not a fluke), each
    driven hardest by different states than those already picked (at most half of its top states shared)."""
    chosen: list[UnitStats] = []
    for unit in sorted((u for layer in layers for u in layer if not u.dead and u.active >= floor), key=lambda u: -u.selectivity):
        if all(len(set(unit.top) & set(other.top)) <= len(unit.top) // 2 for other in chosen):
            chosen.append(unit)
        if len(chosen) == count:
            break
    return chosen
