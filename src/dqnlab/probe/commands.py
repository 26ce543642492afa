"""The command-line verbs that look inside networks: `dqnlab probe` and `dqnlab handset`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from dqnlab.analysis.formatting import fmt
from dqnlab.config import resolve
from dqnlab.probe.stability import THRESHOLD

HANDSET_STATUS = "handset"  # result.json's status for a network nobody trained


@click.command("probe")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Where to write the report [default: RUN_DIR/probe].")
@click.option("--probe-set", type=click.Path(dir_okay=False), default=None, help="Reuse a saved probe set (probe_set.npz of an earlier probe), so results compare across runs.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of a newly built probe set's played episodes.")
@click.option("--threshold", type=click.FloatRange(-1, 1), default=THRESHOLD, show_default=True, help="A unit whose pattern correlates below this with the previous checkpoint's is repurposed.")
def probe_command(run_dir, out, probe_set, seed, threshold):
    """What each hidden unit of a run's network detects, in numbers, words and pictures.

    Shows the network a probe set of at least 10,000 states (greedy play,
    epsilon-greedy play, a pole angle x angular velocity grid); with
    checkpoints (train --checkpoint-every K), also how stable each unit stayed.
    """
    from dqnlab.probe.report import PROBE, PROBE_HTML, probe_run

    report = probe_run(run_dir, out, probe_set, seed, threshold)
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


@click.command("handset")
@click.option("--out", type=click.Path(file_okay=False), default="runs/handset", show_default=True, help="Run directory to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory at --out.")
def handset_command(out, overwrite):
    """Write the hand-wired four-neuron CartPole network as a run directory (play it, probe it)."""
    from dqnlab.handset import NEURONS, handset_network
    from dqnlab.play import play

    out = write_handset_run(Path(out), overwrite)
    network, config = handset_network(), resolve("tutorial", "replay", overrides=[f"network.hidden=[{len(NEURONS)}]"])
    for neuron in NEURONS:
        click.echo(f"{neuron.name:>20}: {neuron.feature}")
    played = play(network, config.env, episodes=10, seed=0, max_steps=10_000)
    click.echo(f"unwrapped CartPole: {sum(e.capped for e in played)} of {len(played)} seeded episodes reached the 10,000-step cap")
    click.echo(f"wrote {out}: dqnlab play {out} --gif handset.gif; dqnlab probe {out}")


def write_handset_run(out: Path, overwrite: bool = False) -> Path:
    """config.json, weights.pt, neurons.json and result.json for the hand-set network."""
    from dqnlab.handset import NEURONS, handset_network
    from dqnlab.config import config_to_json
    from dqnlab.rundir.disk import write_json, write_text
    from dqnlab.rundir.ownership import output_dir
    from dqnlab.rundir.layout import CONFIG, RESULT, WEIGHTS
    from dqnlab.rundir.writer import save_weights

    config = resolve("tutorial", "replay", overrides=[f"network.hidden=[{len(NEURONS)}]"])
    with output_dir(out, "run", "dqnlab handset", overwrite=overwrite):
        write_text(out / CONFIG, config_to_json(config))
        save_weights(handset_network().state_dict(), out / WEIGHTS)
        write_json(out / "neurons.json", [asdict(n) for n in NEURONS])
        result = {"status": HANDSET_STATUS, "samples": 0, "learn_steps": 0, "neurons": len(NEURONS),
                  "note": "weights set by hand (dqnlab.handset), not trained"}  # fmt: skip
        write_json(out / RESULT, result)
    return out
