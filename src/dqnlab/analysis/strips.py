"""The report's strips figure: every episode of every seed, coloured by its score, one row per seed.

A fall shows here where an average would smooth it away: each column shows
the lowest score among the episodes it covers, so even a short one survives
the resolution of the image. On a failures profile (CartPole) the colour
scale is logarithmic and collapses (scores at or below the profile's
`collapse_at`, 12, after learning) take a red end of their own; on a returns
profile it is a linear scale of returns (which may be negative: Acrobot's
run from -500 up), with no collapse colouring. Built like every figure with
matplotlib's object API (`reporting.figures`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

from dqnlab.analysis.measures import measures_of
from dqnlab.analysis.runs import Run
from dqnlab.reporting.figures import new_figure

SCORE_FLOOR = 8.0  # no CartPole episode scores less: the bottom of the strips' colour scale
STRIP_BINS = 900  # columns per strip: about one per pixel of the panel


def plot_strips(summary: dict[str, Any], runs: list[Run]) -> Figure | None:
    """One panel per variant, a row per seed: every episode's score over the samples it covered.

    Each of `STRIP_BINS` columns shows the lowest score among the episodes it
    covers, so a short collapse is never lost to the resolution of the image.
    On a failures profile (CartPole) the scale is logarithmic and scores at or
    below the profile's collapse score (12; 9 is the floor) take its red end;
    on a returns profile it is a linear scale from the lowest return to the
    highest, with no collapse colouring.
    """
    shown = [run for run in runs if len(run.episodes.get("score", ())) > 0]
    names = [name for name in summary["variants"] if any(run.variant == name for run in shown)]
    if not names:
        return None
    budget = float(max(summary["experiment"]["samples"], max(run.episodes["samples"][-1] for run in shown)))
    top = max(float(np.nanmax(run.episodes["score"])) for run in shown)
    profile = measures_of(summary).profile
    if profile.measured_by == "failures":
        low = float(profile.collapse_at)
        norm = LogNorm(vmin=SCORE_FLOOR, vmax=max(top, 2 * low))
        cmap = _collapse_colormap(norm, low)
    else:
        bottom = min(float(np.nanmin(run.episodes["score"])) for run in shown)
        norm = Normalize(vmin=bottom, vmax=top if top > bottom else bottom + 1.0)  # one value alone still spans a scale
        cmap = colormaps["viridis"].with_extremes(bad="white")
    rows = {name: [run for run in shown if run.variant == name] for name in names}
    heights = [max(len(group), 1) + 1.5 for group in rows.values()]
    figure = new_figure(13, 1.4 + 0.28 * sum(heights))
    axes = np.atleast_1d(figure.subplots(len(names), 1, sharex=True, gridspec_kw={"height_ratios": heights}))
    edges = np.linspace(0.0, budget, STRIP_BINS + 1)  # (W + 1,)
    for ax, (name, group) in zip(axes, rows.items()):
        image = np.stack([_strip(run, edges) for run in group])  # (seeds, W)
        picture = ax.imshow(np.ma.masked_invalid(image), aspect="auto", interpolation="nearest", cmap=cmap, norm=norm,
                            extent=(0.0, budget, len(group) - 0.5, -0.5))  # fmt: skip
        ax.set_yticks(range(len(group)), [_row_label(run) for run in group], fontsize=8)
        shadow = summary["variants"].get(name, {}).get("shadow_runs")  # its episodes are the behaviour's
        what = "every episode of the behaviour it learned from (it did not act)" if shadow else "every training episode"
        ax.set_title(f"{name}: {what}, one row per seed", loc="left")
        ax.set_facecolor("white")
    axes[-1].set_xlabel("environment samples")
    if profile.measured_by != "failures":
        figure.colorbar(picture, ax=list(axes), label="episode return", fraction=0.03, pad=0.01)
        figure.suptitle("Episode returns per seed (linear colour scale; each column: the lowest return it covers; "
                        "blank: the unfinished last episode)")  # fmt: skip
        return figure
    bar = figure.colorbar(picture, ax=list(axes), label="episode score", fraction=0.03, pad=0.01)
    ticks = [t for t in (8, 12, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000) if t <= norm.vmax]
    bar.ax.yaxis.set_major_locator(FixedLocator(ticks))
    bar.ax.yaxis.set_major_formatter(ScalarFormatter())
    bar.ax.yaxis.set_minor_locator(NullLocator())
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    figure.suptitle(f"Episode scores per seed (log colour scale; red: scores <= {low:g}, a collapse once learned; "
                    "blank: the unfinished last episode)")  # fmt: skip
    return figure


def _collapse_colormap(norm: LogNorm, low: float) -> ListedColormap:
    """Viridis above `low` (CartPole: 12), reds from the floor to `low`: collapses stand out against any learned score."""
    steps = 512
    cut = int(round(steps * float(norm(low + 0.5))))  # the share of the scale at or below `low`
    low = np.array([[0.55, 0.0, 0.05, 1.0], [0.95, 0.25, 0.2, 1.0]])  # dark to light red
    reds = np.column_stack([np.interp(np.linspace(0, 1, cut), [0, 1], low[:, c]) for c in range(4)])  # (cut, 4)
    rest = colormaps["viridis"](np.linspace(0.0, 1.0, steps - cut))  # (steps - cut, 4)
    return ListedColormap(np.vstack([reds, rest]), name="collapse_viridis").with_extremes(bad="white")


def _strip(run: Run, edges: np.ndarray) -> np.ndarray:
    """The lowest episode score in each column [edges[i], edges[i+1]): (W,), NaN where no episode ended yet."""
    ends = run.episodes["samples"]  # (E,)
    starts = np.concatenate([[0.0], ends[:-1]])  # (E,) an episode starts where the previous one ended
    scores = run.episodes["score"]  # (E,)
    width = len(edges) - 1
    step = edges[1] - edges[0]
    first = np.clip(np.floor(starts / step), 0, width - 1).astype(int)  # (E,)
    last = np.clip(np.ceil(ends / step) - 1, 0, width - 1).astype(int)  # (E,)
    last = np.maximum(last, first)
    counts = last - first + 1  # (E,)
    columns = np.repeat(first, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))  # (C,)
    strip = np.full(width, np.inf)  # (W,)
    np.minimum.at(strip, columns, np.repeat(scores, counts))
    strip[~np.isfinite(strip)] = np.nan
    return strip


def _row_label(run: Run) -> str:
    return f"seed {run.seed}" if run.usable else f"seed {run.seed} ({run.status})"
