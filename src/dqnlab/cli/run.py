"""`dqnlab train`, `play`, `config` and `presets`: one agent, trained or played, and the settings behind it."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import click

from dqnlab.cli import cli
from dqnlab.cli.options import build_config, config_options
from dqnlab.config import PRESETS, Config, config_to_json


@cli.command("train")
@config_options
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run directory [default: runs/AGENT-PRESET-seedS-TIME].")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory at --out.")
@click.option("--checkpoint-every", type=int, default=None, help="Save weights every K samples into checkpoints/.")
@click.option("--save-replay", is_flag=True, help="Save the replay memory as replay.npz at the end.")
@click.option("--tensorboard", is_flag=True, help="Write TensorBoard event files (needs dqnlab[tensorboard]).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Torch CPU threads [default: torch's choice].")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def train_command(preset, agent, config_file, overrides, env_id, samples, seed, device, out, overwrite, checkpoint_every, save_replay, tensorboard, threads, quiet):
    """Train one agent for a budget of samples; print the tutorial's per-episode line.

    Writes a run directory: config.json, episodes.csv, weights.pt, result.json.
    """
    config = build_config(preset, agent, config_file, overrides, env_id, samples, seed, device, checkpoint_every)
    import torch  # after the settings are checked: a mistake there is refused before torch loads

    from dqnlab import api
    from dqnlab.cli.display import TrainDisplay, summary_line
    from dqnlab.engine.envs import time_limit_note

    run_dir = Path(out or _default_out(config))
    spec = api.check_train(config, run_dir, save_replay, tensorboard)  # refusals before anything is written or printed
    if threads is not None:
        torch.set_num_threads(threads)
    echo = (lambda *a, **k: None) if quiet else click.echo

    def started() -> None:  # the run directory is ours now
        note = time_limit_note(config.env, spec)
        if note:
            echo(note, err=True)
        display.live.line(f"training {config.agent} agent ({config.preset} preset) on {config.env.id}, "
                          f"seed {config.run.seed}, {config.run.samples:,} samples -> {run_dir}")  # fmt: skip
        if config.behaviour.actor != "self":
            display.live.line(f"it does not act: it learns from the {config.behaviour.actor} behaviour's transitions, "
                              "recorded first; the episodes shown are the behaviour's")  # fmt: skip

    display = TrainDisplay(config.run.samples, quiet)
    with display.live:
        try:
            trained = api.train(config, run_dir, overwrite, tensorboard, save_replay, display.episode, display.advance, started)
        except KeyboardInterrupt:
            display.live.stop()
            click.echo(f"interrupted: {run_dir} is incomplete (no result.json)", err=True)
            sys.exit(130)
    if trained.result.divergence is not None:
        click.echo(f"diverged: {trained.result.divergence}; training stopped and {run_dir} is marked diverged", err=True)
        sys.exit(1)
    echo(summary_line(trained.result, trained.summary))


def _default_out(config: Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{config.agent}-{config.preset}-seed{config.run.seed}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


@cli.command("play")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--episodes", type=click.IntRange(min=1), default=10, show_default=True, help="Greedy episodes to play.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed for the episodes' starting states.")
@click.option("--max-steps", type=click.IntRange(min=1), default=10_000, show_default=True, help="Step cap per episode (a good agent on unwrapped CartPole never stops).")
@click.option("--gif", type=click.Path(dir_okay=False), default=None, help="Write the first episode as a GIF here.")
@click.option("--gif-frames", type=click.IntRange(min=1), default=1_000, show_default=True, help="Most frames in the GIF (20 s of CartPole).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
def play_command(run_dir, episodes, seed, max_steps, gif, gif_frames, device):
    """Play a trained run greedily (no exploration, no learning) and print the scores and the time per decision.

    The decision time goes to stderr: it changes from run to run, and stdout
    (the scores) stays the same for the same run and seed.
    """
    from dqnlab import api
    from dqnlab.handset import HANDSET_STATUS
    from dqnlab.play import decision_quartiles

    status, played = api.play(run_dir, episodes, seed, max_steps, gif, gif_frames, device)
    results = played.episodes
    if status not in ("complete", HANDSET_STATUS):
        click.echo(f"note: {run_dir} is {status}; played its last saved weights", err=True)
    for index, ep in enumerate(results):
        ending = "capped" if ep.capped else "ended"
        click.echo(f"episode {index}: score {ep.score:10.3f}, length {ep.length:6d} ({ending}; reset seed {ep.seed})")
    scores = sorted(ep.score for ep in results)
    capped = sum(ep.capped for ep in results)
    click.echo(
        f"{len(results)} episodes: mean {statistics.mean(scores):.1f}, median {statistics.median(scores):.1f}, "
        f"min {scores[0]:.1f}, max {scores[-1]:.1f}; {capped} reached the {max_steps}-step cap"
    )
    low, median, high = decision_quartiles(played.decision_seconds)
    click.echo(
        f"greedy decision time per step: median {median:.1f} us (quartiles {low:.1f}-{high:.1f} us) "
        f"over {len(played.decision_seconds):,} decisions on {played.device}, {played.threads} torch thread(s)",
        err=True,
    )
    if gif:
        click.echo(f"wrote {gif}")


@cli.command("config")
@config_options
def config_command(preset, agent, config_file, overrides, env_id, samples, seed, device):
    """Print the resolved configuration as JSON (what train would save as config.json)."""
    click.echo(config_to_json(build_config(preset, agent, config_file, overrides, env_id, samples, seed, device)), nl=False)


@cli.command("presets")
def presets_command():
    """List the named presets."""
    for name, (description, _) in PRESETS.items():
        click.echo(f"{name:10s} {description}")
