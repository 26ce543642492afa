"""Detector stability across an experiment: each run's repurposed share, against a matched null, from checkpoints.

When runs were trained with checkpoints (`--set run.checkpoint_every=K`),
every run is probed with one shared probe set, so the numbers compare across
variants and seeds: it is built once from the final networks of each
variant's first finished seed and kept as OUT/probe/probe_set.npz.

A unit is repurposed at an interval when its activation pattern on the probe
set correlates below 0.5 with the previous checkpoint's. Random weight
change alone repurposes units by that test, so each interval also has a
matched null: the start network moved by random noise of the same norm,
tensor by tensor (see `dqnlab.probe.stability`). Dead and near-silent units
(firing on < 1% of probe states at an end) are counted apart and never
enter the shares. A run's numbers pool all its intervals and hidden layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dqnlab.analysis.runs import Run
from dqnlab.errors import DqnlabError
from dqnlab.networks import load_run_network
from dqnlab.probe.probeset import ProbeSet, build_probe_set
from dqnlab.probe.report import PROBE, PROBE_SET
from dqnlab.probe.stability import Stability, stability
from dqnlab.rundir.disk import make_dir
from dqnlab.rundir.reading import checkpoints

KEYS = ("repurposed_share", "null_repurposed_share", "excess_repurposed_share", "relative_weight_change",
        "dead_units", "near_silent_units")  # fmt: skip


def repurposing(out: str | Path, runs: list[Run], run_dirs: dict[tuple[str, int], Path]) -> dict[tuple[str, int], dict[str, float]]:
    """{(variant, seed): {key: value for key in KEYS}} per finished run with an interval to compare; empty if none has.

    A run's final weights count as its last checkpoint, so one saved checkpoint already gives an interval;
    a run whose checkpoints give no interval, or whose weights or checkpoints cannot be read, is left out. See `stability_numbers` for what each key means.
    """
    usable = [run for run in runs if run.usable and len(checkpoints(run_dirs[(run.variant, run.seed)])) >= 1]
    if not usable:
        return {}
    probe = _shared_probe_set(out, usable, run_dirs)
    numbers = {}
    for run in usable:
        run_dir = run_dirs[(run.variant, run.seed)]
        try:
            _, network = load_run_network(run_dir)
            change = stability(run_dir, probe, network.obs_dim, network.n_actions, int(run.result.get("samples", 0)) or None,
                               hidden=network.hidden)
        except DqnlabError:  # a corrupt checkpoint: this run gives no interval, like a run without checkpoints
            continue
        if change is not None:
            numbers[(run.variant, run.seed)] = stability_numbers(change)
    return numbers


def stability_numbers(change: Stability) -> dict[str, float]:
    """One run's measures, pooled over its intervals and hidden layers.

    repurposed_share: repurposed live unit-intervals / live unit-intervals (nan without live units);
    null_repurposed_share: the same for the matched random-noise null;
    excess_repurposed_share: repurposed_share - null_repurposed_share;
    relative_weight_change: mean over intervals of ||theta_end - theta_start|| / ||theta_start||;
    dead_units, near_silent_units: mean count per interval, all hidden layers together.
    """
    return {
        "repurposed_share": change.real.share,
        "null_repurposed_share": change.null.share,
        "excess_repurposed_share": change.excess_share,
        "relative_weight_change": float(np.mean(change.weight_change)),
        "dead_units": float(change.real.dead.sum(axis=1).mean()),
        "near_silent_units": float(change.real.near_silent.sum(axis=1).mean()),
    }


def _shared_probe_set(out: str | Path, usable: list[Run], run_dirs: dict[tuple[str, int], Path]) -> ProbeSet:
    """OUT/probe/probe_set.npz if it is for this environment, else built from each variant's first run and saved."""
    path = Path(out) / PROBE / PROBE_SET
    first = {}
    for run in usable:
        first.setdefault(run.variant, run)
    config, _ = load_run_network(run_dirs[(usable[0].variant, usable[0].seed)])
    try:
        probe = ProbeSet.load(path) if path.is_file() else None
    except DqnlabError:  # corrupt: it is only a cache of what build_probe_set makes again
        probe = None
    if probe is None or probe.env_id != config.env.id:
        networks = [load_run_network(run_dirs[(run.variant, run.seed)])[1] for run in first.values()]
        probe = build_probe_set(networks, config.env, seed=0)
        make_dir(path.parent)
        probe.save(path)
    return probe
