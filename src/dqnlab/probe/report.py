"""`dqnlab probe RUN_DIR`: probe.json, probe.md, probe.html and the pictures, into RUN_DIR/probe/.

    probe/
      probe_set.npz   the states shown to the network (reuse with --probe-set)
      probe.json      every unit's numbers and description; stability across checkpoints
      probe.md        the report as Markdown
      probe.html      the report, self-contained (pictures embedded)
      frames.png, heatmaps.png, stability.png
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dqnlab.analysis.formatting import fmt
from dqnlab.analysis.plots import save_figures
from dqnlab.analysis.render import Bullets, Figure, Heading, Paragraph, Table, blocks_html, blocks_markdown
from dqnlab.analysis.summary import json_ready
from dqnlab.errors import DqnlabError
from dqnlab.probe import pictures
from dqnlab.probe.probeset import SOURCES, ProbeSet, activations, build_probe_set
from dqnlab.probe.stability import THRESHOLD, Stability, stability
from dqnlab.probe.units import CARTPOLE_VARIABLES, describe, most_selective, strongest, unit_stats
from dqnlab.rundir import RESULT, atomic_write_text, load_run_network

PROBE, PROBE_SET, PROBE_JSON, PROBE_MD, PROBE_HTML = "probe", "probe_set.npz", "probe.json", "probe.md", "probe.html"
CAPTIONS = {
    "frames.png": "The probe states that drive the most selective units hardest, as CartPole frames.",
    "heatmaps.png": "The same units' activation over pole angle x pole angular velocity, cart centred and still.",
    "stability.png": "Repurposing over training: units whose pattern on the probe set changed between checkpoints.",
}


def probe_run(run_dir: str | Path, out: str | Path | None = None, probe_set: str | Path | None = None,
              seed: int = 0, threshold: float = THRESHOLD) -> dict[str, Any]:
    """Probe a run's final network (and its checkpoints); write the report into `out`; return probe.json's content."""
    run_dir = Path(run_dir)
    config, network = load_run_network(run_dir)
    if not network.hidden:
        raise DqnlabError(f"{run_dir}: the network has no hidden layer, so there is nothing to probe")
    out = Path(out) if out is not None else run_dir / PROBE
    probe = ProbeSet.load(probe_set) if probe_set else build_probe_set([network], config.env, seed)
    probe.check(config.env.id, network.obs_dim, where=f"the run in {run_dir}")
    out.mkdir(parents=True, exist_ok=True)
    probe.save(out / PROBE_SET)

    hidden, q = activations(network, probe.states)  # [(S, width)], (S, A)
    layers = unit_stats(network, hidden, probe.states, q)
    descriptions = {u.key: describe(u, probe.env_id, network.n_actions) for layer in layers for u in layer}
    samples = _samples(run_dir)
    change = stability(run_dir, probe, network.obs_dim, network.n_actions, samples, threshold)
    selective = most_selective(layers)
    figures = {
        "frames.png": pictures.plot_frames(probe, selective, hidden, descriptions),
        "heatmaps.png": pictures.plot_heatmaps(probe, selective, hidden),
        "stability.png": pictures.plot_stability(change) if change is not None else None,
    }
    images = [path.name for path in save_figures(out, figures)]
    report = _json(run_dir, probe, probe_set, layers, descriptions, strongest(layers), selective, change)
    atomic_write_text(out / PROBE_JSON, json.dumps(report, indent=2) + "\n")
    blocks = _document(report)
    atomic_write_text(out / PROBE_MD, blocks_markdown(blocks, images, folder="."))
    atomic_write_text(out / PROBE_HTML, blocks_html(blocks, {name: (out / name).read_bytes() for name in images}))
    return report


def _samples(run_dir: Path) -> int | None:
    try:
        return int(json.loads((run_dir / RESULT).read_text())["samples"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _json(run_dir, probe: ProbeSet, source, layers, descriptions, strong, selective, change: Stability | None) -> dict[str, Any]:
    def unit(u):
        top_states = probe.states[list(u.top[:5])].tolist()  # the five states that drive it hardest
        return {**asdict(u), "key": u.key, "dead": u.dead, "description": descriptions[u.key], "top_states": top_states}

    return json_ready({
        "run_dir": str(run_dir),
        "env_id": probe.env_id,
        "probe_set": {"states": len(probe), "seed": probe.seed, "from": str(source) if source else "built from this run",
                      "parts": {name: int(len(probe.part(name))) for name in SOURCES}},
        "layers": [{"layer": i, "width": len(units), "dead": sum(u.dead for u in units), "units": [unit(u) for u in units]}
                   for i, units in enumerate(layers)],
        "strongest": [u.key for u in strong],
        "most_selective": [u.key for u in selective],
        "stability": None if change is None else {
            "samples": list(change.samples), "threshold": change.threshold, "total_repurposed": change.total,
            "repurposed": change.repurposed.tolist(), "silent": change.silent.tolist(),
            "correlations": [c.tolist() for c in change.correlations],
        },
    })  # fmt: skip


def _document(report: dict[str, Any]) -> list:
    units = {u["key"]: u for layer in report["layers"] for u in layer["units"]}
    names = CARTPOLE_VARIABLES if report["env_id"].startswith("CartPole") else None
    variables = names or tuple(f"obs[{i}]" for i in range(len(next(iter(units.values()))["correlations"])))
    parts = report["probe_set"]["parts"]
    blocks = [
        Heading(1, f"What the hidden units of {Path(report['run_dir']).name} detect"),
        Paragraph(f"{fmt(report['probe_set']['states'])} probe states of {report['env_id']} ({parts['greedy']} from greedy play, "
                  f"{parts['epsilon']} from epsilon-greedy play, {parts['grid']} on a pole angle x angular velocity grid; "
                  f"{report['probe_set']['from']}). Run: {report['run_dir']}."),
        Table(("layer", "units", "dead", "median share active", "median selectivity"), tuple(
            (str(layer["layer"]), str(layer["width"]), str(layer["dead"]),
             fmt(_median([u["active"] for u in layer["units"]])), fmt(_median([u["selectivity"] for u in layer["units"]])))
            for layer in report["layers"])),
    ]  # fmt: skip
    headers = ("unit", "active", "selectivity", *(f"r({v})" for v in variables), "r(preference)", "what it detects")
    for title, keys in (("Strongest units (most tied to the decision)", report["strongest"]),
                        ("Most selective units", report["most_selective"])):  # fmt: skip
        rows = tuple(
            (k, fmt(units[k]["active"]), fmt(units[k]["selectivity"]), *(fmt(r) for r in units[k]["correlations"]),
             fmt(units[k]["preference"]), units[k]["description"])
            for k in keys
        )  # fmt: skip
        blocks += [Heading(2, title), Table(headers, rows)]
    blocks += [Figure("frames.png", CAPTIONS["frames.png"]), Figure("heatmaps.png", CAPTIONS["heatmaps.png"])]
    blocks += _stability_blocks(report["stability"])
    blocks += [
        Heading(2, "How to read this"),
        Bullets((
            "active: the share of probe states on which the unit fires (> 0); dead units never fire.",
            "selectivity: lifetime sparsity (Treves & Rolls), 0 = responds alike to every state, 1 = to one state.",
            "r(...): Pearson correlation of the unit's activation with a state variable, or with the network's "
            "preference Q(right) - Q(left); descriptions name the variables with |r| >= 0.3.",
            "raises Q(a): the unit's outgoing weights (last hidden layer) favour action a.",
        )),
    ]  # fmt: skip
    return blocks


def _stability_blocks(change: dict[str, Any] | None) -> list:
    if change is None:
        return [Heading(2, "Stability over training"),
                Paragraph("No checkpoints: train with --checkpoint-every K to see how stable the detectors stayed.")]  # fmt: skip
    rows = tuple(
        (f"{fmt(a)}-{fmt(b)}", *(str(n) for n in counts), str(sum(counts)))
        for a, b, counts in zip(change["samples"][:-1], change["samples"][1:], change["repurposed"])
    )
    layers = len(change["repurposed"][0])
    return [
        Heading(2, "Stability over training"),
        Paragraph(f"{change['total_repurposed']} repurposing events over {len(rows)} checkpoint intervals: a unit is repurposed "
                  f"when its activation pattern on the probe set correlates below {fmt(change['threshold'])} with the "
                  "previous checkpoint's."),
        Table(("samples", *(f"layer {i}" for i in range(layers)), "all"), rows),
        Figure("stability.png", CAPTIONS["stability.png"]),
    ]  # fmt: skip


def _median(values) -> float | None:
    finite = [v for v in values if v is not None]
    return float(np.median(finite)) if finite else None
