"""`dqnlab probe RUN_DIR`: probe.json, probe.md, probe.html and the pictures, into RUN_DIR/probe/.

    probe/
      probe_set.npz   the states shown to the network (reuse with --probe-set)
      probe.json      every unit's numbers and description; stability across checkpoints
      probe.md        the report as Markdown
      probe.html      the report, self-contained (pictures embedded)
      frames.png, heatmaps.png, stability.png
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dqnlab.errors import DqnlabError
from dqnlab.networks import load_run_network
from dqnlab.probe import pictures
from dqnlab.probe.probeset import SOURCES, ProbeSet, activations, build_probe_set
from dqnlab.probe.stability import NEAR_SILENT, NULL_SEED, THRESHOLD, Stability, stability
from dqnlab.probe.units import CARTPOLE_VARIABLES, describe, most_selective, strongest, unit_stats
from dqnlab.reporting.blocks import Bullets, Figure, Heading, Paragraph, Table, blocks_html, blocks_markdown
from dqnlab.reporting.figures import save_figures
from dqnlab.reporting.formatting import fmt
from dqnlab.rundir.disk import json_ready, json_text, write_text
from dqnlab.rundir.layout import RESULT
from dqnlab.rundir.ownership import output_dir
from dqnlab.rundir.reading import read_result

PROBE, PROBE_SET, PROBE_JSON, PROBE_MD, PROBE_HTML = "probe", "probe_set.npz", "probe.json", "probe.md", "probe.html"
CAPTIONS = {
    "frames.png": "The probe states that drive the most selective units hardest, as CartPole frames.",
    "heatmaps.png": "The same units' activation over pole angle x pole angular velocity, cart centred and still.",
    "stability.png": "Repurposing over training: live units whose pattern on the probe set changed between checkpoints (solid), "
                     "the same count for a random weight change of the same size (dashed), and how well live units kept their pattern.",
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
    with output_dir(out, "probe", "dqnlab probe", keep=True):
        probe.save(out / PROBE_SET)
        report = _write(run_dir, out, network, probe, probe_set, threshold)
    return report


def _write(run_dir: Path, out: Path, network, probe: ProbeSet, probe_set, threshold: float) -> dict[str, Any]:
    """The units' numbers, the pictures and the reports, into `out`; returns probe.json's content."""
    hidden, q = activations(network, probe.states)  # [(S, width)], (S, A)
    layers = unit_stats(network, hidden, probe.states, q)
    descriptions = {u.key: describe(u, probe.env_id, network.n_actions) for layer in layers for u in layer}
    samples = _samples(run_dir)
    change = stability(run_dir, probe, network.obs_dim, network.n_actions, samples, threshold, hidden=network.hidden)
    selective = most_selective(layers)
    figures = {
        "frames.png": pictures.plot_frames(probe, selective, hidden, descriptions),
        "heatmaps.png": pictures.plot_heatmaps(probe, selective, hidden),
        "stability.png": pictures.plot_stability(change) if change is not None else None,
    }
    images = [path.name for path in save_figures(out, figures)]
    report = _json(run_dir, probe, probe_set, layers, descriptions, strongest(layers), selective, change)
    write_text(out / PROBE_JSON, json_text(report))
    blocks = _document(report)
    write_text(out / PROBE_MD, blocks_markdown(blocks, images, folder="."))
    write_text(out / PROBE_HTML, blocks_html(blocks, {name: (out / name).read_bytes() for name in images}))
    return report


def _samples(run_dir: Path) -> int | None:
    """The samples the run trained, from result.json; None without one (or without a count); DqnlabError if corrupt."""
    result = read_result(run_dir)  # strict JSON: one line for a corrupt file
    samples = None if result is None else result.get("samples")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 0):
        raise DqnlabError(f"{run_dir / RESULT} has samples {samples!r}; expected a whole number >= 0")
    return samples


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
        "stability": None if change is None else _stability_json(change),
    })  # fmt: skip


def _stability_json(change: Stability) -> dict[str, Any]:
    real, null = change.real, change.null
    return {
        "samples": list(change.samples), "threshold": change.threshold, "near_silent_below": NEAR_SILENT, "null_seed": NULL_SEED,
        "total_repurposed": change.total, "null_total_repurposed": int(null.repurposed.sum()),
        "repurposed_share": real.share, "null_repurposed_share": null.share, "excess_repurposed_share": change.excess_share,
        "interval_shares": real.interval_shares, "null_interval_shares": null.interval_shares,
        "weight_change": change.weight_change, "layer_weight_change": change.layer_weight_change,
        "repurposed": real.repurposed, "null_repurposed": null.repurposed, "live": real.live, "null_live": null.live,
        "dead": real.dead, "near_silent": real.near_silent, "correlations": list(real.correlations),
    }  # per-interval arrays are (intervals, layers); correlations are per layer (intervals, width)


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
    rows = _interval_rows(change)
    live, null_live = int(np.sum(change["live"])), int(np.sum(change["null_live"]))
    return [
        Heading(2, "Stability over training"),
        Paragraph(f"Over {len(rows)} checkpoint intervals, live units were repurposed {change['total_repurposed']} times in "
                  f"{live} live unit-intervals (share {fmt(change['repurposed_share'])}), against {change['null_total_repurposed']} in "
                  f"{null_live} (share {fmt(change['null_repurposed_share'])}) in the matched null: an excess share of "
                  f"{fmt(change['excess_repurposed_share'])}. A live unit is repurposed when its activation pattern on the probe set "
                  f"correlates below {fmt(change['threshold'])} with the previous checkpoint's. The null moves the interval's start "
                  "network by Gaussian noise whose norm equals the real change's, tensor by tensor (each weight matrix and bias "
                  "vector), and counts the same way: what a weight change of that size in a random direction does."),
        Table(("samples", "relative weight change", "live", "repurposed", "null repurposed", "share", "null share", "dead",
               "near-silent"), rows),
        Figure("stability.png", CAPTIONS["stability.png"]),
        Bullets((
            "relative weight change: ||theta_end - theta_start|| / ||theta_start|| over all parameters of the network.",
            "dead: fires on no probe state at the start or the end of the interval; near-silent: fires on fewer than "
            f"{fmt(change['near_silent_below'])} of them at one end, and is not dead. Neither enters the counts or the shares.",
            "share: repurposed live units / live units, all hidden layers together; the null's share is out of the units live "
            "between the start and the perturbed network. Layer by layer in probe.json.",
        )),
    ]  # fmt: skip


def _interval_rows(change: dict[str, Any]) -> tuple[tuple[str, ...], ...]:
    """One table row per interval, hidden layers summed."""
    keys = ("live", "repurposed", "null_repurposed", "dead", "near_silent")
    summed = {key: np.sum(change[key], axis=1) for key in keys}  # (intervals,) each: (intervals, layers) summed over layers
    rows = []
    for i, (start, end) in enumerate(zip(change["samples"][:-1], change["samples"][1:])):
        counts = {key: fmt(int(values[i])) for key, values in summed.items()}
        rows.append((f"{fmt(start)}-{fmt(end)}", fmt(change["weight_change"][i]), counts["live"], counts["repurposed"],
                     counts["null_repurposed"], fmt(change["interval_shares"][i]), fmt(change["null_interval_shares"][i]),
                     counts["dead"], counts["near_silent"]))  # fmt: skip
    return tuple(rows)


def _median(values) -> float | None:
    finite = [v for v in values if v is not None]
    return float(np.median(finite)) if finite else None
