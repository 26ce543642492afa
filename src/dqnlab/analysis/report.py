"""Writing summary.json, summary.md, plots and report.html into a results directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dqnlab.analysis.runs import load_experiment
from dqnlab.analysis.summary import summarize

SUMMARY_JSON = "summary.json"


def build_report(out: str | Path) -> dict[str, Any]:
    """Read a results directory's runs and (re)write its summary and report; returns the summary."""
    out = Path(out)
    experiment, runs = load_experiment(out)
    summary = summarize(experiment, runs)
    tmp = out / (SUMMARY_JSON + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(out / SUMMARY_JSON)
    return summary
