"""`dqnlab probe` and `dqnlab handset`: a look inside a network, and the network set by hand."""

from __future__ import annotations

from pathlib import Path

import click

from dqnlab.cli import cli
from dqnlab.probe import THRESHOLD
from dqnlab.reporting.formatting import fmt


@cli.command("probe")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Where to write the report [default: RUN_DIR/probe].")
@click.option("--probe-set", type=click.Path(dir_okay=False), default=None, help="Reuse a saved probe set (probe_set.npz of an earlier probe), so results compare across runs.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of a newly built probe set's played episodes.")
@click.option("--threshold", type=click.FloatRange(-1, 1), default=THRESHOLD, show_default=True, help="A unit whose pattern correlates below this with the previous checkpoint's is repurposed.")
def probe_command(run_dir, out, probe_set, seed, threshold):
    """What each hidden unit of a run's network detects, in numbers, words and pictures.

    Shows the network a probe set of at least 10,000 states (greedy play,
    epsilon-greedy play and, on CartPole, a pole angle x angular velocity
    grid); on image observations (MinAtar) a unit's top states are drawn as
    frames. With checkpoints (train --checkpoint-every K), also how stable
    each unit stayed.
    """
    from dqnlab import api
    from dqnlab.probe.report import PROBE, PROBE_HTML

    report = api.probe(run_dir, out, probe_set, seed, threshold)
    out = Path(out) if out else Path(run_dir) / PROBE
    for layer in report["layers"]:
        click.echo(f"layer {layer['layer']}: {layer['width']} units, {layer['dead']} dead")
    units = {u["key"]: u for layer in report["layers"] for u in layer["units"]}
    for title, keys in (("strongest", report["strongest"]), ("most selective", report["most_selective"])):
        click.echo(f"{title}:")
        for key in keys:
            click.echo(f"  {key}: {units[key]['description']}")
    if report["stability"] is not None:
        change = report["stability"]
        intervals = len(change["samples"]) - 1
        click.echo(f"{change['total_repurposed']} repurposings of live units over {intervals} checkpoint interval{'s' * (intervals != 1)} "
                   f"(matched random-noise null: {change['null_total_repurposed']}); share of live units "
                   f"{fmt(change['repurposed_share'])}, null {fmt(change['null_repurposed_share'])}")
    click.echo(f"report: {out / PROBE_HTML}")


@cli.command("handset")
@click.option("--out", type=click.Path(file_okay=False), default="runs/handset", show_default=True, help="Run directory to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory at --out.")
def handset_command(out, overwrite):
    """Write the hand-wired four-neuron CartPole network as a run directory (play it, probe it)."""
    from dqnlab import api
    from dqnlab.handset import NEURONS

    out = api.handset(out, overwrite)
    for neuron in NEURONS:
        click.echo(f"{neuron.name:>20}: {neuron.feature}")
    episodes = api.play(out, episodes=10, seed=0, max_steps=10_000)[1].episodes
    click.echo(f"unwrapped CartPole: {sum(e.capped for e in episodes)} of {len(episodes)} seeded episodes reached the 10,000-step cap")
    click.echo(f"wrote {out}: dqnlab play {out} --gif handset.gif; dqnlab probe {out}")
