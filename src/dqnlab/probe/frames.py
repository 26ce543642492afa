"""Image observations (MinAtar's frames): what a frame holds, its state variables, and drawing it as MinAtar does.

A frame is H x W x C binary cells, kept flattened row by row with channels
last (the engine's layout); channel c is one kind of object, named by the
game (Breakout: paddle, ball, trail, brick).

- `screen_of(env_id)`: the frame's shape, the channels' and the actions' names,
  read from the environment (None for vector observations such as CartPole's);
- `channel_counts`: lit cells per channel in each state, i.e. how much of each
  object is on screen: the state variables the probe correlates units with
  (400 single cells would give 400 correlations, none of them telling);
- `palette`, `frame_image`: MinAtar's own colours (its `display_state`): black
  background, channel c in matplotlib's cubehelix at (c + 1) / (C + 1), which is
  what seaborn's `color_palette("cubehelix", C)` returns (seaborn not needed);
  where several channels are lit in one cell, the highest channel shows;
- `plot_screen_frames`: frames.png for image observations: each unit's top
  states as frames, a convolution channel's receptive field outlined where it
  fired hardest.
"""

from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from dqnlab.config import EnvConfig
from dqnlab.engine.envs import make_env
from dqnlab.engine.network import KERNEL
from dqnlab.probe.probeset import ProbeSet
from dqnlab.probe.units import UnitStats
from dqnlab.reporting.figures import new_figure

# MinAtar's action letters (each game's `action_map`) in words
ACTION_WORDS = {"n": "no-op", "l": "left", "u": "up", "r": "right", "d": "down", "f": "fire"}
OUTLINE = "#ff2020"  # the window a channel fired hardest at: red, a hue cubehelix's middle never takes at full saturation
GRID_LINES = "#3a3a3a"  # faint cell borders on the black background


@dataclass(frozen=True)
class Screen:
    """What an image observation holds: (H, W, C) and the names of its channels and actions."""

    frame: tuple[int, int, int]
    channels: tuple[str, ...]  # channel c's name: MinAtar's, else "channel c"
    actions: tuple[str, ...] | None = None  # action a's name (MinAtar: its letter in words); None: unnamed

    @property
    def variables(self) -> tuple[str, ...]:
        """The state variables' names, one per channel: "brick cells" is the count of lit brick cells."""
        return tuple(f"{name.replace('_', ' ')} cells" for name in self.channels)


@functools.lru_cache(maxsize=16)
def screen_of(env_id: str) -> Screen | None:
    """The screen of an environment with image observations; None for vector observations."""
    env, spec = make_env(EnvConfig(id=env_id))
    try:
        if spec.frame is None:
            return None
        game = getattr(getattr(env.unwrapped, "game", None), "env", None)  # MinAtar: BaseEnv.game.env is the game
        named = getattr(game, "channels", None)  # {name: index}
        channels = tuple(sorted(named, key=named.get)) if named else tuple(f"channel {c}" for c in range(spec.frame[2]))
        letters, action_set = getattr(game, "action_map", None), getattr(env.unwrapped, "action_set", None)
        actions = None
        if letters is not None and action_set is not None and len(action_set) == spec.n_actions:
            actions = tuple(ACTION_WORDS.get(letters[a], str(a)) for a in action_set)  # gym action -> MinAtar's action
        return Screen(spec.frame, channels, actions)
    finally:
        env.close()


def channel_counts(states: np.ndarray, frame: tuple[int, int, int]) -> np.ndarray:
    """Lit cells per channel (S, C) of flattened frames (S, H * W * C): how much of each object is on screen."""
    height, width, channels = frame
    return states.reshape(len(states), height * width, channels).sum(axis=1)  # (S, C)


def palette(channels: int) -> np.ndarray:
    """MinAtar's colours (C + 1, 3): row 0 black (no channel lit), row c + 1 channel c, cubehelix at (c + 1) / (C + 1)."""
    bins = np.linspace(0.0, 1.0, channels + 2)[1:-1]  # (C,): seaborn's mpl_palette drops cubehelix's black and white ends
    return np.vstack([np.zeros((1, 3)), colormaps["cubehelix"](bins)[:, :3]])  # (C + 1, 3)


def frame_image(state: np.ndarray, frame: tuple[int, int, int], colours: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) of one flattened frame (H * W * C,): each cell the colour of its highest lit channel, else black."""
    cells = state.reshape(frame) > 0  # (H, W, C)
    shown = np.max(cells * np.arange(1, frame[2] + 1), axis=2)  # (H, W): 0 = nothing lit, c + 1 = channel c on top
    return colours[shown]  # (H, W, 3)


def receptive_field(layer: int) -> int:
    """Cells per side of the frame window a position of convolution `layer` (0 = first) sees: 3, 5, 7, ..."""
    return 1 + (KERNEL - 1) * (layer + 1)


def plot_screen_frames(probe: ProbeSet, units: list[UnitStats], hidden: list[np.ndarray], descriptions: dict[str, str],
                       screen: Screen, count: int, conv_layers: int = 0) -> Figure:  # fmt: skip
    """A row of top-activating frames per unit, titled with the activation; a convolution channel's window outlined.

    `conv_layers`: how many leading hidden layers are convolutions (their units are channels with `positions`).
    """
    colours = palette(screen.frame[2])
    columns = count
    figure = new_figure(1.75 * columns + 0.4, 2.05 * len(units) + 0.9)
    axes = figure.subplots(len(units), columns, squeeze=False)
    for row, unit in zip(axes, units):
        top = list(unit.top[:columns])
        conv = unit.layer < conv_layers and unit.positions is not None
        for i, (ax, index) in enumerate(zip(row, top)):
            activation = float(hidden[unit.layer][index, unit.unit])
            _draw(ax, frame_image(probe.states[index], screen.frame, colours), screen.frame)
            if conv and activation > 0:  # a silent channel has no window it fired at
                size = receptive_field(unit.layer)
                r, c = unit.positions[i]
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), size, size, fill=False, edgecolor=OUTLINE, linewidth=2.2))
            ax.set_title(f"a = {activation:.2f}", fontsize=8)
        for ax in row[len(top) :]:
            ax.axis("off")
        what = f"channel {unit.unit} of convolution {unit.layer}" if conv else f"unit {unit.unit} of layer {unit.layer}"
        row[0].set_ylabel(f"{unit.key}\n{what}", fontsize=8)
        note = row[0].text(0, -0.05, textwrap.shorten(descriptions[unit.key], 140), transform=row[0].transAxes, fontsize=7, va="top")
        note.set_in_layout(False)  # a caption under the row; the frames keep their size
    handles = [Patch(facecolor=colours[c + 1], edgecolor="grey", label=name) for c, name in enumerate(screen.channels)]
    if conv_layers:
        handles.append(Line2D([], [], color=OUTLINE, linewidth=2.2, label="window a channel fired hardest at"))
    figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    figure.suptitle(f"{probe.env_id}: probe states that drive the most selective units hardest (a: activation)", fontsize=11)
    figure.get_layout_engine().set(h_pad=0.12)  # room for each row's caption
    return figure


def _draw(ax, image: np.ndarray, frame: tuple[int, int, int]) -> None:
    """One frame on `ax`: its cells, faint cell borders, no ticks."""
    height, width, _ = frame
    ax.imshow(image, interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, width), minor=True), ax.set_yticks(np.arange(-0.5, height), minor=True)
    ax.grid(which="minor", color=GRID_LINES, linewidth=0.5)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_xticks([]), ax.set_yticks([])
