"""The options shared by every command that builds a configuration, and the configuration they give."""

from __future__ import annotations

import click

from dqnlab.config import PRESETS, Config, check_given_once, resolve

HELP_SET = "Override one key, value as a TOML literal: --set learner.lr=1e-4 --set network.hidden='[64, 64]'. Repeatable."


def config_options(command):
    """The options shared by every command that builds a configuration."""
    options = [
        click.option("--preset", type=click.Choice(list(PRESETS)), default=None, help="Named base configuration [default: tutorial]."),
        click.option("--agent", type=click.Choice(["naive", "replay"]), default=None, help="naive: learn from each transition once, as it arrives; replay: batches from a replay memory [default: replay]."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, help="TOML file with [env] [network] [learner] [replay] [run] tables (and optional preset, agent)."),
        click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help=HELP_SET),
        click.option("--env", "env_id", default=None, help="Gymnasium id (Discrete actions; flat Box observations or MinAtar's binary frames), e.g. Acrobot-v1 or MinAtar/Breakout-v1. Same as --set env.id=ID."),
        click.option("--samples", type=int, default=None, help="Sample budget: environment transitions. Same as --set run.samples=N."),
        click.option("--seed", type=int, default=None, help="Seed for weights, environment, exploration and replay. Same as --set run.seed=N."),
        click.option("--device", default=None, help="cpu, cuda or cuda:N. Same as --set run.device=D."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_config(preset, agent, config_file, overrides, env_id, samples, seed, device, checkpoint_every=None) -> Config:
    """The configuration the options describe; a shortcut option and a --set may not give one key two values."""
    shortcuts = {"env.id": env_id, "run.samples": samples, "run.seed": seed, "run.device": device, "run.checkpoint_every": checkpoint_every}
    settings = {key: value for key, value in shortcuts.items() if value is not None}
    check_given_once(overrides, settings)
    return resolve(preset, agent, config_file, overrides, settings)
