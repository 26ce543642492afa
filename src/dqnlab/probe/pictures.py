"""The probe's pictures, as the tutorial shows for Pong: what makes a unit fire.

- `frames.png`: for each of the most selective units, frames of the probe
  states that drive it hardest: CartPole's rendered by Gymnasium with the
  state set; image observations (MinAtar's) drawn cell by cell in MinAtar's
  colours, a convolution channel's window outlined (`frames.plot_screen_frames`);
- `heatmaps.png`: each of those units' activation over the grid of pole angle
  x pole angular velocity (cart centred and still), CartPole only;
- `stability.png`: live units repurposed per checkpoint interval, per layer,
  beside the matched random-noise null (dashed), and how well live units kept
  their pattern (median and 10th percentile correlation).
"""

from __future__ import annotations

import textwrap
import warnings

import numpy as np
from matplotlib.figure import Figure

from dqnlab.config import EnvConfig
from dqnlab.engine.envs import make_env
from dqnlab.probe.frames import Screen, plot_screen_frames
from dqnlab.probe.probeset import CARTPOLE_IDS, GRID, ProbeSet
from dqnlab.probe.stability import LIVE, Stability
from dqnlab.probe.units import UnitStats
from dqnlab.reporting.figures import PALETTE, new_figure

FRAMES_PER_UNIT = 6


def render_states(env_id: str, states: np.ndarray) -> list[np.ndarray]:
    """RGB frames (H, W, 3) of CartPole states, drawn by Gymnasium's own renderer."""
    env, _ = make_env(EnvConfig(id=env_id), render_mode="rgb_array")
    env.reset(seed=0)
    frames = []
    for state in states:
        env.unwrapped.state = np.asarray(state, dtype=np.float64)  # (4,)
        frames.append(env.render())
    env.close()
    return frames


def plot_frames(probe: ProbeSet, units: list[UnitStats], hidden: list[np.ndarray], descriptions: dict[str, str],
                screen: Screen | None = None, conv_layers: int = 0) -> Figure | None:  # fmt: skip
    """A row of top-activating frames per unit; None if the environment cannot be drawn from a state.

    `screen`: image observations, drawn as frames; `conv_layers`: how many leading hidden layers are convolutions.
    """
    units = [u for u in units if u.top]
    if not units:
        return None
    if screen is not None:
        return plot_screen_frames(probe, units, hidden, descriptions, screen, FRAMES_PER_UNIT, conv_layers)
    if probe.env_id not in CARTPOLE_IDS:
        return None
    figure = new_figure(2.1 * FRAMES_PER_UNIT, 1.9 * len(units))
    axes = figure.subplots(len(units), FRAMES_PER_UNIT, squeeze=False)
    for row, unit in zip(axes, units):
        top = list(unit.top[:FRAMES_PER_UNIT])
        for ax, index, frame in zip(row, top, render_states(probe.env_id, probe.states[top])):
            ax.imshow(frame[100:330])  # the band the cart and pole move in
            x, _, theta, theta_dot = probe.states[index]
            ax.set_title(f"a={hidden[unit.layer][index, unit.unit]:.2f}  θ={np.degrees(theta):+.1f}°  θ'={theta_dot:+.2f}", fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
        for ax in row[len(top):]:
            ax.axis("off")
        row[0].set_ylabel(unit.key, fontsize=9)
        note = row[0].text(0, -0.12, textwrap.shorten(descriptions[unit.key], 150), transform=row[0].transAxes, fontsize=7, va="top")
        note.set_in_layout(False)  # a caption under the row; the frames keep their width
    figure.suptitle("Probe states that drive the most selective units hardest (a: activation)")
    return figure


def plot_heatmaps(probe: ProbeSet, units: list[UnitStats], hidden: list[np.ndarray]) -> Figure | None:
    """Activation over (pole angle, pole angular velocity), cart centred and still; None without a grid."""
    grid = probe.part("grid")
    if len(grid) != GRID * GRID or not units:
        return None
    columns = min(3, len(units))
    rows = -(-len(units) // columns)
    figure = new_figure(4.2 * columns, 3.4 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).reshape(-1)
    extent = (probe.grid_theta_dot[0], probe.grid_theta_dot[-1], np.degrees(probe.grid_theta[0]), np.degrees(probe.grid_theta[-1]))
    for ax, unit in zip(axes, units):
        values = hidden[unit.layer][grid, unit.unit].reshape(GRID, GRID)  # (theta, theta_dot)
        top = float(values.max())
        image = ax.imshow(values, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=0.0, vmax=top if top > 0 else 1.0)
        figure.colorbar(image, ax=ax, label="activation")  # ReLU: 0 (black) is silence
        ax.set_title(unit.key if top > 0 else f"{unit.key} (silent everywhere on this grid)", fontsize=10)
        ax.set_xlabel("pole angular velocity θ' (rad/s)")
        ax.set_ylabel("pole angle θ (degrees)")
    for ax in axes[len(units):]:
        ax.axis("off")
    figure.suptitle("Activation over pole angle x angular velocity (cart centred and still)")
    return figure


def plot_stability(result: Stability) -> Figure:
    """Repurposed live units per interval against the matched null, and the spread of live units' correlations, one colour per layer."""
    figure = new_figure(11, 3.8)
    events, spread = figure.subplots(1, 2)
    ends = np.array(result.samples[1:])  # (intervals,)
    real, null = result.real.repurposed, result.null.repurposed  # (intervals, layers) each
    for layer, (correlations, classes) in enumerate(zip(result.real.correlations, result.real.classes)):  # (intervals, width) each
        color = PALETTE[layer % len(PALETTE)]
        events.plot(ends, real[:, layer], marker="o", color=color, label=f"layer {layer} ({correlations.shape[1]} units)")
        events.plot(ends, null[:, layer], linestyle="--", color=color, label=f"layer {layer}: matched null")
        live = np.where(classes == LIVE, correlations, np.nan)  # (intervals, width)
        with warnings.catch_warnings():  # an interval without live units gives nan, drawn as a gap
            warnings.simplefilter("ignore", RuntimeWarning)
            median, low = np.nanmedian(live, axis=1), np.nanpercentile(live, 10, axis=1)  # (intervals,)
        spread.plot(ends, median, marker="o", color=color, label=f"layer {layer}: median")
        spread.plot(ends, low, linestyle=":", color=color, label=f"layer {layer}: 10th percentile")
    events.set(title=f"Live units repurposed (correlation < {result.threshold:g}); dashed: null", xlabel="samples",
               ylabel="live units repurposed")
    spread.axhline(result.threshold, color="grey", linewidth=0.8)
    spread.set(title="Live units' pattern vs the previous checkpoint", xlabel="samples", ylabel="correlation", ylim=(-1.05, 1.05))
    events.legend(fontsize=8)
    spread.legend(fontsize=7)
    return figure
