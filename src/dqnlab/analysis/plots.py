"""The report's three figures, drawn from summary.json (and, for the strips, the runs' episodes).

- `curves.png`: the tutorial's three views of learning side by side: the
  score per episode, and per sample and per agent-second, over a trailing
  window: failures per 1,000 samples on a failures profile (CartPole;
  counting every sample, an unfinished episode's included) or the mean return
  of the episodes that ended in it on a returns profile; IQM with its 95% CI
  band and the mean, per variant; greedy evaluations (scores) as markers on
  a second axis of the samples panel.
- `strips.png` (`analysis.strips`): every episode of every seed, coloured by
  its score, so that a fall is visible where an average would smooth it away.
- `measures.png`: IQM and mean with 95% CIs of the headline measures, one
  row per measure, in the manner of rliable's aggregate plots.

Figures are built with matplotlib's object API (`Figure` + Agg canvas), not
`pyplot`: nothing global changes (no backend switch, no figure registry to
leak into), and a figure is freed as soon as it is saved. Whatever cannot be
drawn (a variant without usable runs, points that are None, no evaluations)
is skipped; a panel left empty says so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from dqnlab.analysis.measures import GREEDY, measures_of
from dqnlab.analysis.metrics import CURVE_WINDOW
from dqnlab.analysis.runs import Run
from dqnlab.analysis.strips import plot_strips
from dqnlab.reporting.figures import PALETTE, new_figure, save_figures
from dqnlab.rundir.disk import make_dir

PLOTS = "plots"
# axis key in summary["curves"] -> (panel title, x label), per profile's measured_by
AXES = {
    "failures": {
        "episode": ("Reward per episode", "episode"),
        "samples": ("Failures", "environment samples"),
        "seconds": ("Failures against time", "one agent's wall-clock seconds"),
    },
    "returns": {
        "episode": ("Return per episode", "episode"),
        "samples": ("Return", "environment samples"),
        "seconds": ("Return against time", "one agent's wall-clock seconds"),
    },
}
EPISODE_LABELS = {"failures": f"training score ({CURVE_WINDOW}-episode moving average)",
                  "returns": f"training return ({CURVE_WINDOW}-episode moving average)"}  # fmt: skip
RATE_LABEL = "failures per 1,000 samples (lower is better)"
TRAILING_RETURN_LABEL = "mean return over the trailing {window:,.0f} samples\n(higher is better)"  # two lines: it is long


def write_plots(out: str | Path, summary: dict[str, Any], runs: Iterable[Run] = ()) -> list[Path]:
    """Draw every figure into OUT/plots/ (each written atomically); returns the paths written."""
    directory = Path(out) / PLOTS
    make_dir(directory)
    figures = {
        "curves.png": plot_curves(summary),
        "strips.png": plot_strips(summary, list(runs)),
        "measures.png": plot_measures(summary),
    }
    return save_figures(directory, figures)


def variant_colors(summary: dict[str, Any]) -> dict[str, str]:
    """One colour per variant, the same in every figure."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(summary["variants"])}


def _floats(values: Iterable[Any] | None) -> np.ndarray:
    """A JSON list with None for missing values as a float array with NaN there."""
    return np.array([np.nan if v is None else v for v in (values or [])], dtype=np.float64)


def _say_empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


# ---------------------------------------------------------------- curves


def plot_curves(summary: dict[str, Any]) -> Figure:
    """Three panels: IQM line with 95% CI band and dashed mean per variant, on each of the tutorial's axes."""
    colors = variant_colors(summary)
    measured_by = measures_of(summary).profile.measured_by
    figure = new_figure(15, 5.2)
    axes = figure.subplots(1, 3)
    curved, evaluated = set(), set()
    window = summary["limits"].get("rate_window") or 0
    trailing_label = RATE_LABEL if measured_by == "failures" else TRAILING_RETURN_LABEL.format(window=window)
    shadows = any(variant.get("shadow_runs") for variant in summary["variants"].values())  # learners that did not act
    empty = "no training curves of learners\nthat did not act" if shadows else "no usable runs"
    for ax, (axis, (title, xlabel)) in zip(axes, AXES[measured_by].items()):
        for name, curve in summary["curves"].get(axis, {}).items():
            if _draw_curve(ax, curve, colors.get(name, "0.3")):
                curved.add(name)
        if axis == "samples" and summary.get("evaluation"):
            twin = ax.twinx()
            evaluated = _draw_evaluations(twin, summary["evaluation"], colors, summary["experiment"]["samples"])
            twin.set_ylabel("greedy evaluation score (diamonds)")
        if not ax.has_data():
            _say_empty(ax, empty)
            if not (axis == "samples" and evaluated):  # the greedy evaluations still need the sample axis
                ax.set_xticks([])
        ax.set_title(title if axis == "episode" else f"{title}, over the trailing {window:,.0f} samples", fontsize=11)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(EPISODE_LABELS[measured_by] if axis == "episode" else trailing_label)
        ax.grid(alpha=0.3)
    entries = [_legend_entries(name, color, name in curved, name in evaluated) for name, color in colors.items()]
    entries = [row for row in entries if row]
    if entries:
        width = max(len(row) for row in entries)
        # a legend row per variant: matplotlib fills columns first, so hand it the entries column by column
        columns = [row[j] if j < len(row) else (Patch(alpha=0), "") for j in range(width) for row in entries]
        handles, labels = zip(*columns)
        figure.legend(handles, labels, loc="outside lower center", ncol=width, frameon=False)
    if not any(ax.has_data() for ax in axes):
        axes[0].set_yticks([])
        figure.suptitle(f"Greedy evaluations over {_seed_counts(summary)}: IQM with 95% bootstrap CI" if evaluated
                        else "Training score: no usable runs to draw")  # fmt: skip
    else:
        figure.suptitle(f"Training over {_seed_counts(summary)}: IQM (line) with 95% bootstrap CI (band), mean (dashed)")
    return figure


def _legend_entries(name: str, color: str, curved: bool, evaluated: bool) -> list[tuple[Any, str]]:
    entries: list[tuple[Any, str]] = []
    if curved:
        band = (Patch(color=color, alpha=0.2, linewidth=0), Line2D([], [], color=color, linewidth=2))
        entries += [(band, f"{name}: IQM, 95% CI"), (Line2D([], [], color=color, linewidth=0.9, linestyle="--"), f"{name}: mean")]
    if evaluated:
        marker = Line2D([], [], color=color, marker="D", markeredgecolor="black", markeredgewidth=0.6, linestyle="none")
        entries.append((marker, f"{name}: greedy eval (IQM, 95% CI)"))
    return entries


def _draw_curve(ax, curve: dict[str, Any], color: str) -> bool:
    x, iqm = _floats(curve.get("x")), _floats(curve.get("iqm"))
    if len(x) == 0 or len(x) != len(iqm) or not np.isfinite(iqm).any():
        return False
    low, high, mean = (_floats(curve.get(key)) for key in ("iqm_low", "iqm_high", "mean"))
    marker = "o" if np.isfinite(iqm).sum() == 1 else None  # a lone point draws no line
    ax.plot(x, iqm, color=color, linewidth=2, marker=marker)
    if len(low) == len(x) == len(high):
        band = np.isfinite(low) & np.isfinite(high)  # (G,)
        ax.fill_between(x, low, high, where=band, color=color, alpha=0.2, linewidth=0)
    if len(mean) == len(x) and np.isfinite(mean).any():
        ax.plot(x, mean, color=color, linewidth=0.9, linestyle="--", marker=marker)
    return True


def _draw_evaluations(ax, evaluation: dict[str, Any], colors: dict[str, str], budget: float) -> set[str]:
    """Greedy evaluation IQM with its 95% CI as error bars, nudged apart so variants do not hide each other."""
    drawn = set()
    names = [name for name in colors if name in evaluation]
    for i, name in enumerate(names):
        block = evaluation[name]
        x, greedy = _floats(block.get("samples")), block.get("greedy") or {}
        iqm, low, high = (_floats(greedy.get(key)) for key in ("iqm", "iqm_low", "iqm_high"))
        if len(x) == 0 or not (len(x) == len(iqm) == len(low) == len(high)):
            continue
        keep = np.isfinite(iqm) & np.isfinite(low) & np.isfinite(high)  # (K,)
        if not keep.any():
            continue
        nudge = (i - (len(names) - 1) / 2) * 0.012 * budget
        error = np.vstack([np.maximum(iqm - low, 0), np.maximum(high - iqm, 0)])[:, keep]  # (2, K')
        ax.errorbar(x[keep] + nudge, iqm[keep], yerr=error, fmt="D", markersize=6, capsize=4, color=colors[name],
                    markeredgecolor="black", markeredgewidth=0.6, linestyle="none")  # fmt: skip
        drawn.add(name)
    return drawn


def _seed_counts(summary: dict[str, Any]) -> str:
    counts = sorted({block.get("n", 0) for block in summary["variants"].values()})
    if len(counts) == 1:
        return f"{counts[0]} seed{'s' if counts[0] != 1 else ''} per variant"
    return "; ".join(f"{name} n={block.get('n', 0)}" for name, block in summary["variants"].items())


# ---------------------------------------------------------------- measures


def plot_measures(summary: dict[str, Any]) -> Figure:
    """IQM (dot, thick bar) and mean (hollow diamond, thin bar) with 95% CIs; a row per headline measure
    that some run has, and per greedy-evaluation measure that some run has (all headline rows if none has any)."""
    colors = variant_colors(summary)
    names = list(summary["variants"])
    measure_set = measures_of(summary)
    headline = measure_set.headline
    measured = [key for key in (*headline, *GREEDY)
                if any(v.get("measures", {}).get(key, {}).get("n") for v in summary["variants"].values())]
    keys = measured or list(headline)
    figure = new_figure(10, 1.0 + len(keys) * (0.75 + 0.45 * max(len(names), 1)))
    axes = np.atleast_1d(figure.subplots(len(keys), 1))
    for ax, key in zip(axes, keys):
        ax.set_title(summary["measures"][key]["label"], loc="left", fontsize=10)
        drawn = False
        for row, name in enumerate(names):
            block = summary["variants"][name].get("measures", {}).get(key, {})
            drawn |= _draw_interval(ax, row - 0.13, block, ("iqm", "iqm_low", "iqm_high"), colors[name], "o", 5)
            drawn |= _draw_interval(ax, row + 0.13, block, ("mean", "mean_low", "mean_high"), colors[name], "D", 1.5)
        labels = [f"{name} (n={summary['variants'][name].get('n', 0)})" for name in names]
        ax.set_yticks(range(len(names)), labels)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
        if not drawn:
            _say_empty(ax, "no usable runs")
    for ax, key in zip(axes, keys):
        higher = summary["measures"][key]["higher_is_better"]
        if measure_set.profile.measured_by == "failures":
            unit = "greedy score" if key in GREEDY else "score"
            ax.set_xlabel(f"{unit} (higher is better)" if higher else "failures per 1,000 samples (lower is better)", fontsize=8)
        else:
            ax.set_xlabel("greedy score (higher is better)" if key in GREEDY else "return (higher is better)", fontsize=8)
    handles = [  # legend proxies drawn like the marks: a dot on a thick bar, a hollow diamond on a thin one
        Line2D([], [], color="0.35", marker="o", markersize=7, linewidth=5, label="IQM, 95% CI"),
        Line2D([], [], color="0.35", marker="D", markersize=6, markerfacecolor="white", linewidth=1.5, label="mean, 95% CI"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
    figure.suptitle("Measures per variant (95% percentile-bootstrap CIs over seeds)")
    return figure


def _draw_interval(ax, y: float, block: dict, keys: tuple[str, str, str], color: str, marker: str, width: float) -> bool:
    value, low, high = (block.get(key) for key in keys)
    if value is None or not math.isfinite(value):
        return False
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        ax.hlines(y, low, high, color=color, linewidth=width, alpha=0.55 if width > 2 else 1.0)
    face = color if marker == "o" else "white"
    ax.plot([value], [y], marker=marker, color=color, markerfacecolor=face, markersize=7 if marker == "o" else 6,
            linestyle="none")  # fmt: skip
    return True
