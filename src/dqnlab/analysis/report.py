"""Writing summary.json, summary.md, plots and report.html into a results directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dqnlab.analysis.detectors import repurposing
from dqnlab.analysis.plots import write_plots
from dqnlab.analysis.render import render_html, render_markdown
from dqnlab.analysis.runs import load_experiment, load_timings
from dqnlab.analysis.summary import summarize
from dqnlab.rundir.disk import json_text, write_text
from dqnlab.rundir.layout import run_dir_for

SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
REPORT_HTML = "report.html"


def build_report(out: str | Path) -> dict[str, Any]:
    """Read a results directory's runs and (re)write its summary and report; returns the summary.

    summary.json first, then plots/*.png, summary.md and report.html, each
    written to a temporary file and renamed: an interrupted rebuild leaves
    the previous file whole, never half of one.
    """
    out = Path(out)
    experiment, runs = load_experiment(out)
    run_dirs = {(run.variant, run.seed): run_dir_for(out, run.variant, run.seed) for run in runs}
    summary = summarize(experiment, runs, repurposing(out, runs, run_dirs), load_timings(out, experiment))
    write_text(out / SUMMARY_JSON, json_text(summary))
    plots = write_plots(out, summary, runs)
    write_text(out / SUMMARY_MD, render_markdown(summary, plots=[path.name for path in plots]))
    write_text(out / REPORT_HTML, render_html(summary, {path.name: path.read_bytes() for path in plots}))
    return summary
