"""Detector stability across an experiment: repurposed units per run, from checkpoints.

When runs were trained with checkpoints (`--set run.checkpoint_every=K`),
every run is probed with one shared probe set, so the counts compare across
variants and seeds: it is built once from the final networks of each
variant's first finished seed and kept as OUT/probe/probe_set.npz. A run's
measure is the number of repurposing events (a unit whose activation pattern
correlates below 0.5 with the previous checkpoint's) summed over its
intervals and layers. Runs of one experiment share the checkpoint cadence,
so the counts are comparable.
"""

from __future__ import annotations

import math
from pathlib import Path

from dqnlab.analysis.runs import Run
from dqnlab.probe.probeset import ProbeSet, build_probe_set
from dqnlab.probe.report import PROBE, PROBE_SET
from dqnlab.probe.stability import stability
from dqnlab.rundir import checkpoints, load_run_network


def repurposing(out: str | Path, runs: list[Run], run_dirs: dict[tuple[str, int], Path]) -> dict[tuple[str, int], float]:
    """Repurposing events per finished run with checkpoints: {(variant, seed): count}; empty if no run has any.

    A run's final weights count as its last checkpoint, so one saved checkpoint already gives an interval.
    """
    usable = [run for run in runs if run.usable and len(checkpoints(run_dirs[(run.variant, run.seed)])) >= 1]
    if not usable:
        return {}
    path = Path(out) / PROBE / PROBE_SET
    first = {}
    for run in usable:
        first.setdefault(run.variant, run)
    config, _ = load_run_network(run_dirs[(usable[0].variant, usable[0].seed)])
    probe = ProbeSet.load(path) if path.is_file() else None
    if probe is None or probe.env_id != config.env.id:
        networks = [load_run_network(run_dirs[(run.variant, run.seed)])[1] for run in first.values()]
        probe = build_probe_set(networks, config.env, seed=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.save(path)
    counts = {}
    for run in usable:
        run_dir = run_dirs[(run.variant, run.seed)]
        _, network = load_run_network(run_dir)
        change = stability(run_dir, probe, network.obs_dim, network.n_actions, int(run.result.get("samples", 0)) or None)
        counts[(run.variant, run.seed)] = float(change.total) if change is not None else math.nan
    return counts
