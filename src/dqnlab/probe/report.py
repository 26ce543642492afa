"""`dqnlab probe RUN_DIR`: probe.json, probe.md, probe.html and the pictures, into RUN_DIR/probe/.

    probe/
      probe_set.npz   the states shown to the network (reuse with --probe-set)
      probe.json      every unit's numbers and description; stability across checkpoints
      probe.md        the report as Markdown
      probe.html      the report, self-contained (pictures embedded)
      frames.png, heatmaps.png (CartPole), stability.png

For image observations (MinAtar), a convolution's units are its channels,
the state variables are each channel's count of lit cells, and probe.json
lists a top state's lit cells as (row, column, channel) instead of its
H * W * C numbers (all of them are in probe_set.npz, at the indices in `top`).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dqnlab.errors import DqnlabError
from dqnlab.networks import load_run_network
from dqnlab.probe import pictures
from dqnlab.probe.frames import Screen, channel_counts, screen_of
from dqnlab.probe.probeset import SOURCES, ProbeSet, build_probe_set, responses
from dqnlab.probe import THRESHOLD
from dqnlab.probe.stability import NEAR_SILENT, NULL_SEED, Stability, stability
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
    "frames.png (screen)": "The probe states that drive the most selective units hardest, drawn as {env} frames: a {h} x {w} "
                           "grid in which each lit cell has its channel's colour (where channels overlap, the one listed "
                           "last shows), titled with the unit's activation{outline}.",
    "heatmaps.png": "The same units' activation over pole angle x pole angular velocity, cart centred and still.",
    "stability.png": "Repurposing over training: live units whose pattern on the probe set changed between checkpoints (solid), "
                     "the same count for a random weight change of the same size (dashed), and how well live units kept their pattern.",
}


def probe_run(run_dir: str | Path, out: str | Path | None = None, probe_set: str | Path | None = None,
              seed: int = 0, threshold: float = THRESHOLD) -> dict[str, Any]:
    """Probe a run's final network (and its checkpoints); write the report into `out`; return probe.json's content."""
    run_dir = Path(run_dir)
    config, network = load_run_network(run_dir)
    if not network.hidden and not network.conv:
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
    screen = screen_of(probe.env_id)  # None for vector observations
    seen = responses(network, probe.states)  # units [(S, units)], where channels fired, Q (S, A)
    hidden = seen.hidden
    variables = probe.states if screen is None else channel_counts(probe.states, screen.frame)  # (S, n variables)
    layers = unit_stats(network, hidden, variables, seen.q, seen.positions)
    descriptions = {u.key: describe(u, probe.env_id, network.n_actions, screen) for layer in layers for u in layer}
    samples = _samples(run_dir)
    change = stability(run_dir, probe, network.obs_dim, network.n_actions, samples, threshold, hidden=network.hidden)
    selective = most_selective(layers)
    figures = {
        "frames.png": pictures.plot_frames(probe, selective, hidden, descriptions, screen, len(network.conv)),
        "heatmaps.png": pictures.plot_heatmaps(probe, selective, hidden),
        "stability.png": pictures.plot_stability(change) if change is not None else None,
    }
    images = [path.name for path in save_figures(out, figures)]
    report = _json(run_dir, probe, probe_set, layers, descriptions, strongest(layers), selective, change, screen, network)
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


def _json(run_dir, probe: ProbeSet, source, layers, descriptions, strong, selective, change: Stability | None,
          screen: Screen | None, network) -> dict[str, Any]:  # fmt: skip
    def unit(u):
        top_states = probe.states[list(u.top[:5])]  # (5, obs_dim): the five states that drive it hardest
        shown = top_states.tolist() if screen is None else [_lit_cells(state, screen) for state in top_states]
        return {**asdict(u), "key": u.key, "dead": u.dead, "description": descriptions[u.key],
                "best_position": u.positions[0] if u.positions else None, "top_states": shown}  # fmt: skip

    sizes = network.shape.conv_sizes()[1:]  # (H', W', channels) out of each convolution
    kinds = [{"kind": "convolution", "positions": [h, w]} for h, w, _ in sizes[: len(network.conv)]]
    kinds += [{"kind": "fully connected"}] * (len(layers) - len(kinds))
    return json_ready({
        "run_dir": str(run_dir),
        "env_id": probe.env_id,
        "n_actions": network.n_actions,
        "variables": list(_variable_names(probe, screen)),
        "frame": None if screen is None else list(screen.frame),
        "channels": None if screen is None else list(screen.channels),
        "probe_set": {"states": len(probe), "seed": probe.seed, "from": str(source) if source else "built from this run",
                      "parts": {name: int(len(probe.part(name))) for name in SOURCES}},
        "layers": [{"layer": i, **kind, "width": len(units), "dead": sum(u.dead for u in units), "units": [unit(u) for u in units]}
                   for i, (kind, units) in enumerate(zip(kinds, layers))],
        "strongest": [u.key for u in strong],
        "most_selective": [u.key for u in selective],
        "stability": None if change is None else _stability_json(change),
    })  # fmt: skip


def _variable_names(probe: ProbeSet, screen: Screen | None) -> tuple[str, ...]:
    if screen is not None:
        return screen.variables
    return CARTPOLE_VARIABLES if probe.env_id.startswith("CartPole") else tuple(f"obs[{i}]" for i in range(probe.obs_dim))


def _lit_cells(state: np.ndarray, screen: Screen) -> list[list[int]]:
    """A flattened frame's lit cells as [row, column, channel], row by row."""
    return np.argwhere(state.reshape(screen.frame) > 0).tolist()  # (lit, 3)


def _captions(report: dict[str, Any]) -> dict[str, str]:
    """The figures' captions, in the words of what each one draws."""
    if report["frame"] is None:
        return CAPTIONS
    convolutions = any(layer["kind"] == "convolution" for layer in report["layers"])
    outline = "; for a convolution channel, the window its largest output saw is outlined in red" if convolutions else ""
    env = "MinAtar" if report["env_id"].startswith("MinAtar/") else report["env_id"]
    height, width, _ = report["frame"]
    return {**CAPTIONS, "frames.png": CAPTIONS["frames.png (screen)"].format(env=env, h=height, w=width, outline=outline)}


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
    variables, captions = report["variables"], _captions(report)
    parts = report["probe_set"]["parts"]
    grid = f", {parts['grid']} on a pole angle x angular velocity grid" if parts["grid"] else ""
    blocks = [
        Heading(1, f"What the hidden units of {Path(report['run_dir']).name} detect"),
        Paragraph(f"{fmt(report['probe_set']['states'])} probe states of {report['env_id']} ({parts['greedy']} from greedy play, "
                  f"{parts['epsilon']} from epsilon-greedy play{grid}; {report['probe_set']['from']}). Run: {report['run_dir']}."
                  + _screen_words(report)),
        Table(("layer", "units", "dead", "median share active", "median selectivity"), tuple(
            (_layer_name(layer), str(layer["width"]), str(layer["dead"]),
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
    blocks.append(Figure("frames.png", captions["frames.png"]))
    if parts["grid"]:  # the heatmaps need CartPole's grid
        blocks.append(Figure("heatmaps.png", captions["heatmaps.png"]))
    blocks += _stability_blocks(report["stability"])
    blocks += [Heading(2, "How to read this"), Bullets(_reading(report))]
    return blocks


def _layer_name(layer: dict[str, Any]) -> str:
    if layer["kind"] == "convolution":
        return f"{layer['layer']} (convolution: channels, each over {layer['positions'][0]} x {layer['positions'][1]} positions)"
    return str(layer["layer"])


def _screen_words(report: dict[str, Any]) -> str:
    """What units and state variables are, for image observations; nothing for vectors."""
    if report["frame"] is None:
        return ""
    convolutions = [layer for layer in report["layers"] if layer["kind"] == "convolution"]
    units = (" A convolution's units are its channels: a channel's activation on a state is its largest output over "
             "its positions." if convolutions else "")  # fmt: skip
    return (f"{units} State variables: the number of lit cells of each channel ({', '.join(report['channels'])}), "
            "i.e. how much of each object is on screen.")


def _reading(report: dict[str, Any]) -> tuple[str, ...]:
    """The "How to read this" bullets, in the words of this environment's state variables and actions."""
    head = ("active: the share of probe states on which the unit fires (> 0); dead units never fire.",
            "selectivity: lifetime sparsity (Treves & Rolls), 0 = responds alike to every state, 1 = to one state.")  # fmt: skip
    if report["frame"] is None and report["env_id"].startswith("CartPole"):
        return head + (
            "r(...): Pearson correlation of the unit's activation with a state variable, or with the network's "
            "preference Q(right) - Q(left); descriptions name the variables with |r| >= 0.3.",
            "raises Q(a): the unit's outgoing weights (last hidden layer) favour action a.",
        )  # fmt: skip
    preference = "Q(1) - Q(0)" if report["n_actions"] == 2 else "the best action's Q-value minus the mean of all actions' Q-values"
    what = ("the number of lit cells of one channel in the state (how much of that object is on screen)"
            if report["frame"] is not None else "a state variable")  # fmt: skip
    return head + (
        f"r(...): Pearson correlation of the unit's activation with {what}, or with the network's preference, "
        f"{preference}; descriptions name the variables with |r| >= 0.3, strongest first.",
        "raises Q(a) most: of the unit's outgoing weights (last hidden layer), the one to Q(a) is the largest and positive; "
        "lowers every Q-value: all of them are negative.",
    )  # fmt: skip


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
