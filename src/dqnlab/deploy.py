"""How long a network takes to pick a greedy action once it has stopped learning: trained runs and the hand-set network.

The tutorial says both agents take equally long to act when they are not
learning. `measure_deploy` checks it: it plays each complete run of a results
directory greedily (`play.play`, which times every `greedy_action` call) and
keeps each run's median decision time; a row per variant then gives the
median and the IQM (with its 95% bootstrap CI, `analysis.stats.aggregate`) of
those per-run medians. The per-run median, not the mean, because decision
times are skewed by rare waits on the operating system.

The hand-set network (`handset.handset_network()`) is one network, not one per
seed. So that its row has a CI too, it is played as many times as the variant
with the most complete runs has runs (at least once), each time as a separate
`play.play` call from starting seed `seed + repeat`. Its CI therefore spans
only the timing noise between repeats of the same network, whereas a
variant's CI also spans its runs' different weights (which, at one shape,
should not change the time of a forward pass).

The plays are interleaved: round i plays run i of every variant, then the
hand-set network's repeat i. On a machine whose speed drifts while it
measures, every row then drifts alike, instead of the first variant getting
the quick minutes and the last the slow ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dqnlab.analysis.stats import aggregate
from dqnlab.config import EnvConfig
from dqnlab.engine.network import QNetwork, count_parameters
from dqnlab.errors import DqnlabError
from dqnlab.handset import handset_config, handset_network
from dqnlab.networks import load_run_network
from dqnlab.play import decision_quartiles, play
from dqnlab.rundir.layout import RUNS, run_dir_for
from dqnlab.rundir.reading import run_status
from dqnlab.runtime import resolve_device

HANDSET_ROW = "handset"


def measure_deploy(results_dir: str | Path, variants: list[str], seeds: list[int], episodes: int, max_steps: int,
                   handset: bool, device: str = "cpu", seed: int = 0) -> dict:  # fmt: skip
    """Greedy decision time per step of every complete run of `variants` x `seeds`, and of the hand-set network.

    Every run plays the same `episodes` episodes (starting seed `seed`) of its
    own environment, capped at `max_steps` steps. Runs whose status is not
    "complete" (incomplete, diverged, failed) are skipped and counted. Returns
    a JSON-ready table: the device and torch thread count, and one row per
    variant (in the order given), then "handset" if asked for.
    """
    results_dir, torch_device = Path(results_dir), resolve_device(device)
    if not (results_dir / RUNS).is_dir():
        raise DqnlabError(f"{results_dir} is not a results directory: it has no {RUNS}/ folder (make one with dqnlab compare)")
    players = [_variant_runs(results_dir, variant, seeds, torch_device) for variant in variants]
    if handset:
        repeats = max([len(player.networks) for player in players], default=0) or 1
        network = handset_network().to(torch_device)
        players.append(Players(HANDSET_ROW, [(handset_config().env, network)] * repeats, [], network.hidden, count_parameters(network)))
    medians: dict[str, list[float]] = {player.name: [] for player in players}
    decisions = dict.fromkeys(medians, 0)
    for i in range(max([len(player.networks) for player in players], default=0)):  # round i: run i of every row
        for player in players:
            if i < len(player.networks):
                env_config, network = player.networks[i]
                start = seed + i if player.name == HANDSET_ROW else seed  # the hand-set network: a new start per repeat
                median, steps = _median_decision_us(network, env_config, episodes, start, max_steps)
                medians[player.name].append(median)
                decisions[player.name] += steps
    rows = [_row(p.name, p.hidden, p.parameters, medians[p.name], decisions[p.name], p.skipped) for p in players]
    return {"device": str(torch_device), "torch_threads": torch.get_num_threads(), "episodes": episodes,
            "max_steps": max_steps, "seed": seed, "rows": rows}  # fmt: skip


@dataclass(frozen=True)
class Players:
    """One row's networks to play, in order, and the runs it skipped."""

    name: str
    networks: list[tuple[EnvConfig, QNetwork]]
    skipped: list[str]
    hidden: tuple[int, ...] | None
    parameters: int | None


def _variant_runs(results_dir: Path, variant: str, seeds: list[int], device: torch.device) -> Players:
    """One variant's complete runs' final networks; the others skipped and named."""
    if not (results_dir / RUNS / variant).is_dir():
        found = sorted(path.name for path in (results_dir / RUNS).iterdir() if path.is_dir())
        raise DqnlabError(f"{results_dir} has no runs of variant {variant!r}; it has: {', '.join(found) or 'none'}")
    networks, skipped = [], []
    for run_seed in seeds:
        run_dir = run_dir_for(results_dir, variant, run_seed)
        status = run_status(run_dir) if run_dir.is_dir() else "missing"
        if status != "complete":
            skipped.append(f"{variant}/{run_dir.name}: {status}")
            continue
        config, network = load_run_network(run_dir, device)
        networks.append((config.env, network))
    shapes = {network.hidden for _, network in networks}
    if len(shapes) > 1:
        raise DqnlabError(f"the runs of variant {variant!r} have different hidden layers {sorted(shapes)}; one row needs one shape")
    hidden = next(iter(shapes), None)
    return Players(variant, networks, skipped, hidden, count_parameters(networks[0][1]) if networks else None)


def _median_decision_us(network: QNetwork, env_config: EnvConfig, episodes: int, seed: int, max_steps: int) -> tuple[float, int]:
    """One `play.play` call (no GIF): its median decision time in microseconds, and how many decisions it timed."""
    played = play(network, env_config, episodes=episodes, seed=seed, max_steps=max_steps)
    return decision_quartiles(played.decision_seconds)[1], len(played.decision_seconds)


def _row(name: str, hidden: tuple[int, ...] | None, parameters: int | None, medians: list[float], decisions: int,
         skipped: list[str]) -> dict:  # fmt: skip
    """A table row; with no run played, the statistics are None (JSON null): `aggregate` needs at least one value."""
    stats = aggregate(medians) if medians else None
    return {
        "name": name,
        "hidden": list(hidden) if hidden is not None else None,
        "parameters": parameters,
        "runs": len(medians),
        "skipped": len(skipped),
        "skipped_runs": skipped,
        "decisions": decisions,
        "run_medians_us": medians,
        "median_us": float(np.median(medians)) if medians else None,
        "iqm_us": stats["iqm"] if stats else None,
        "iqm_low_us": stats["iqm_low"] if stats else None,
        "iqm_high_us": stats["iqm_high"] if stats else None,
    }


def deploy_text(table: dict) -> str:
    """`measure_deploy`'s table as fixed-width text, one line per row, for a terminal or a README code block."""
    lines = [
        f"greedy decision time per step (microseconds; median over each run's decisions) on {table['device']}, "
        f"{table['torch_threads']} torch thread(s); {table['episodes']} episode(s) of up to {table['max_steps']:,} steps per run",
        f"{'name':<12} {'network':>10} {'params':>8} {'runs':>5} {'skipped':>8} {'decisions':>11} {'median':>8}  IQM [95% CI]",
    ]
    for row in table["rows"]:
        network = "x".join(str(width) for width in row["hidden"]) if row["hidden"] else "-"
        parameters = f"{row['parameters']:,}" if row["parameters"] is not None else "-"
        median = f"{row['median_us']:.1f}" if row["median_us"] is not None else "-"
        iqm = f"{row['iqm_us']:.1f} [{row['iqm_low_us']:.1f}, {row['iqm_high_us']:.1f}]" if row["iqm_us"] is not None else "-"
        lines.append(f"{row['name']:<12} {network:>10} {parameters:>8} {row['runs']:>5} {row['skipped']:>8} "
                     f"{row['decisions']:>11,} {median:>8}  {iqm}")  # fmt: skip
    return "\n".join(lines) + "\n"
