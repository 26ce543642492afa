"""Figures for the reports: matplotlib's object API (no pyplot state), one palette, atomic PNG files."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dqnlab.rundir.disk import write_with

DPI = 120
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
NO_METADATA = {"Software": None}  # no matplotlib version stamp: the same data gives the same bytes


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figures(directory: Path, figures: dict[str, Figure | None]) -> list[Path]:
    """Write each figure as directory/NAME atomically; a None figure removes an old file of that name."""
    written = []
    for name, figure in figures.items():
        path = directory / name
        if figure is None:  # nothing to draw: a figure left from an earlier build would contradict the report
            path.unlink(missing_ok=True)
            continue
        write_with(path, lambda handle, figure=figure: figure.savefig(handle, format="png", dpi=DPI, metadata=NO_METADATA))
        written.append(path)
    return written
