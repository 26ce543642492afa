"""The `dqnlab` command: parse, build a configuration, call the library, print.

User mistakes (DqnlabError, click usage errors) print one line and exit 2.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import click
import torch

from dqnlab import __version__
from dqnlab.config import PRESETS, Config, check_given_once, config_to_json, resolve
from dqnlab.display import LiveDisplay
from dqnlab.engine.envs import make_env, time_limit_note
from dqnlab.engine.records import EpisodeRecord, TrainResult
from dqnlab.rundir.disk import disk_error, is_disk_error
from dqnlab.errors import DqnlabError
from dqnlab.experiments.limits import check_cost, check_experiment_cost
from dqnlab.play import play
from dqnlab.probe.commands import HANDSET_STATUS, handset_command, probe_command
from dqnlab.rundir.ownership import output_dir
from dqnlab.experiments.trainrun import train_into
from dqnlab.rundir.writer import require_tensorboard
from dqnlab.networks import load_run_network
from dqnlab.rundir.reading import run_status
from dqnlab.runtime import resolve_device

HELP_SET = "Override one key, value as a TOML literal: --set learner.lr=1e-4 --set network.hidden='[64, 64]'. Repeatable."


def config_options(command):
    """The options shared by every command that builds a configuration."""
    options = [
        click.option("--preset", type=click.Choice(list(PRESETS)), default=None, help="Named base configuration [default: tutorial]."),
        click.option("--agent", type=click.Choice(["naive", "replay"]), default=None, help="naive: learn from each transition once, as it arrives; replay: batches from a replay memory [default: replay]."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, help="TOML file with [env] [network] [learner] [replay] [run] tables (and optional preset, agent)."),
        click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help=HELP_SET),
        click.option("--env", "env_id", default=None, help="Gymnasium id (Discrete actions, flat Box observations), e.g. Acrobot-v1. Same as --set env.id=ID."),
        click.option("--samples", type=int, default=None, help="Sample budget: environment transitions. Same as --set run.samples=N."),
        click.option("--seed", type=int, default=None, help="Seed for weights, environment, exploration and replay. Same as --set run.seed=N."),
        click.option("--device", default=None, help="cpu, cuda or cuda:N. Same as --set run.device=D."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_config(preset, agent, config_file, overrides, env_id, samples, seed, device, checkpoint_every=None) -> Config:
    shortcuts = {"env.id": env_id, "run.samples": samples, "run.seed": seed, "run.device": device, "run.checkpoint_every": checkpoint_every}
    extra = [f"{key}={_literal(value)}" for key, value in shortcuts.items() if value is not None]
    check_given_once([*overrides, *extra])
    return resolve(preset, agent, config_file, [*overrides, *extra])


def _literal(value) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


class UserError(click.ClickException):
    """A DqnlabError on its way out: one line on stderr, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


class _Group(click.Group):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """As click's, but a usage error is one line too: `error: ... (see dqnlab CMD --help)`, exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as error:  # `dqnlab` alone: the help, as click shows it
            error.show()
            sys.exit(error.exit_code)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else "dqnlab"
            click.echo(f"error: {error.format_message()} (see {command} --help)", err=True)
            sys.exit(2)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:  # Ctrl-C before a command began, or at a prompt
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DqnlabError as error:
            raise UserError(str(error)) from None
        except OSError as error:  # a disk that refused a write outside dqnlab's own writers (disk.py)
            if is_disk_error(error):
                raise UserError(str(disk_error(error))) from None
            raise
        except KeyboardInterrupt:  # files being written are whole or absent (disk.py): say so, as a shell expects
            click.echo("interrupted: every file written so far is whole; nothing half-written was kept", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dqnlab")
def cli() -> None:
    """dqnlab: deep Q-learning with experience replay, as a lab.

    Train the tutorial's naive and replay agents on CartPole (or any Gymnasium
    environment with discrete actions), then watch them play.
    """


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
    resolve_device(config.run.device)
    env, spec = make_env(config.env)  # check the environment before anything is written
    env.close()
    if tensorboard:
        require_tensorboard()
    if threads is not None:
        torch.set_num_threads(threads)
    run_dir = Path(out or _default_out(config))
    check_cost(config, spec, members=1, out=run_dir, save_replay=save_replay)  # memory and disk, before anything is written
    with output_dir(run_dir, "run", "dqnlab train", overwrite=overwrite):
        result, summary = _train(config, spec, run_dir, quiet, tensorboard, save_replay)
    if result.divergence is not None:
        click.echo(f"diverged: {result.divergence}; training stopped and {run_dir} is marked diverged", err=True)
        sys.exit(1)
    if not quiet:
        click.echo(_summary_line(result, summary))


def _train(config: Config, spec, run_dir: Path, quiet: bool, tensorboard: bool, save_replay: bool):
    """Train into the locked, empty `run_dir` with the tutorial's lines and a progress bar."""
    echo = (lambda *a, **k: None) if quiet else click.echo
    note = time_limit_note(config.env, spec)
    if note:
        echo(note, err=True)
    echo(f"training {config.agent} agent ({config.preset} preset) on {config.env.id}, seed {config.run.seed}, "
         f"{config.run.samples:,} samples -> {run_dir}")  # fmt: skip
    display = _Display(config.run.samples, quiet)
    with display.live:
        try:
            return train_into(run_dir, config, display.episode, display.advance, tensorboard, save_replay)
        except KeyboardInterrupt:
            display.live.stop()
            click.echo(f"interrupted: {run_dir} is incomplete (no result.json)", err=True)
            sys.exit(130)


class _Display:
    """A progress bar over the sample budget with the tutorial's lines above it."""

    def __init__(self, total: int, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (TextColumn("samples"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        self.live = LiveDisplay(*columns, quiet=quiet, transient=True)
        self.task = self.live.progress.add_task("train", total=total)

    def advance(self, samples: int) -> None:
        self.live.progress.update(self.task, completed=samples)

    def episode(self, record: EpisodeRecord) -> None:
        if not self.live.quiet:
            self.advance(record.samples)
            self.live.line(episode_line(record))


def episode_line(record: EpisodeRecord) -> str:
    """The tutorial's line. Its `last-episode-time` counted from 1 (length + 1); this prints the length."""
    return (
        f"total samples: {record.samples}, ep {record.episode}: high-score {record.high_score:12.3f}, "
        f"score {record.score:12.3f}, length {record.length:4d}"
    )


def _summary_line(result: TrainResult, summary: dict) -> str:
    return (
        f"done: {summary['episodes']} episodes, {result.samples:,} samples, {summary['learn_steps']:,} learn steps, "
        f"{summary['transitions_processed']:,} transitions processed, {result.wall_seconds:.1f} s; "
        f"replay memory {summary['replay_bytes_per_transition']} bytes/transition"
    )


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
    """Play a trained run greedily (no exploration, no learning) and print the scores."""
    config, network = load_run_network(run_dir, resolve_device(device))
    status = run_status(run_dir)
    if status not in ("complete", HANDSET_STATUS):
        click.echo(f"note: {run_dir} is {status}; playing its last saved weights", err=True)
    results = play(network, config.env, episodes=episodes, seed=seed, max_steps=max_steps, gif_path=gif, gif_max_frames=gif_frames)
    for index, ep in enumerate(results):
        ending = "capped" if ep.capped else "ended"
        click.echo(f"episode {index}: score {ep.score:10.3f}, length {ep.length:6d} ({ending}; reset seed {ep.seed})")
    scores = sorted(ep.score for ep in results)
    capped = sum(ep.capped for ep in results)
    click.echo(
        f"{len(results)} episodes: mean {statistics.mean(scores):.1f}, median {statistics.median(scores):.1f}, "
        f"min {scores[0]:.1f}, max {scores[-1]:.1f}; {capped} reached the {max_steps}-step cap"
    )
    if gif:
        click.echo(f"wrote {gif}")


@cli.command("compare")
@click.option("--experiment", "experiment_file", type=click.Path(dir_okay=False), default=None, help="TOML experiment file: preset, samples, seeds, [common.*] and [variants.NAME] tables.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None, help="Base configuration of every variant [default: tutorial].")
@click.option("--samples", type=int, default=None, help="Sample budget of every run [default: the preset's].")
@click.option("--seeds", type=int, default=None, help="Paired seeds per variant: FIRST..FIRST+N-1 [default: 10].")
@click.option("--first-seed", type=click.IntRange(min=0), default=None, help="The first of --seeds N consecutive seeds [default: 0]. Use seeds no setting was tuned on.")
@click.option("--variant", "variants", multiple=True, metavar="NAME:KEY=VALUE,...", help="A variant, e.g. replay16:replay.batch_size=16,replay.warmup=16 or slow:agent=naive,learner.lr=1e-5. Repeatable [default: naive and replay].")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="A setting shared by every variant, as a TOML literal. Repeatable.")
@click.option("--eval-every", type=click.IntRange(min=1), default=None, help="Greedy evaluation every K samples (run.eval_every), reported beside training scores.")
@click.option("--backend", type=click.Choice(["local", "population", "ray"]), default="local", show_default=True, help="local: one process per run at a time. population: each variant's seeds train together as one batched computation. ray: one Ray task per run (needs dqnlab[ray]).")
@click.option("--address", default=None, help="Ray backend: the cluster to join (as for ray.init, e.g. auto or HEAD_IP:6379) [default: start a local Ray instance].")
@click.option("--population-size", type=click.IntRange(min=1), default=None, help="Population backend: most seeds per population [default: all seeds of a variant]. Ray backend: run populations of up to this many seeds as Ray tasks [default: one run per task].")
@click.option("--device", default=None, help="cpu, cuda or cuda:N for every run (run.device) [default: the preset's, cpu].")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Local backend: worker processes, one torch thread each. Population backend: torch threads. Ray backend without --address: CPUs of the local Ray instance [default: CPU cores].")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Results directory [default: results/compare-PRESET]. Rerunning the same command there resumes.")
@click.option("--overwrite", is_flag=True, help="Replace a results directory that holds a different experiment.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the conclusion.")
def compare_command(experiment_file, preset, samples, seeds, first_seed, variants, overrides, eval_every, backend, address, population_size, device, workers, out, overwrite, quiet):
    """Train variants x paired seeds and compare them per episode, per sample and per second.

    Seed k gives every variant the same initial weights and environment starts.
    Writes runs/, summary.json, summary.md, plots/ and a self-contained report.html.
    """
    from dqnlab.experiments.compare import compare

    if population_size is not None and backend == "local":
        raise DqnlabError("--population-size applies to --backend population or ray only")
    overrides = (*overrides, *([f"run.device={device}"] if device else []))
    if first_seed is not None:
        if seeds is None:
            raise DqnlabError("--first-seed needs --seeds N (the number of consecutive seeds)")
        if seeds < 1:
            raise DqnlabError(f"--seeds must be >= 1; got {seeds}")
        seeds = range(first_seed, first_seed + seeds)
    experiment = _build_experiment(experiment_file, preset, samples, seeds, variants, overrides, eval_every)
    out = Path(out or f"results/compare-{experiment.preset}")
    check_experiment_cost(experiment, backend, workers or os.cpu_count() or 1, population_size, out, address)
    summary = compare(
        experiment, out, workers=workers or os.cpu_count() or 1, overwrite=overwrite, quiet=quiet,
        backend=backend, population_size=population_size, address=address,
    )  # fmt: skip
    _print_conclusion(summary, out)


def _build_experiment(experiment_file, preset, samples, seeds, variants, overrides, eval_every):
    from dqnlab.config import check_given_once, parse_override
    from dqnlab.experiments.spec import EXPERIMENT_KEYS, build_experiment, parse_variant_option, read_experiment_file

    data = read_experiment_file(experiment_file) if experiment_file else {}
    common, where = data.get("common", {}), f"experiment file {experiment_file}"
    if not isinstance(common, dict):
        raise DqnlabError(f"{where}: common must be a table of tables such as [common.learner]; got {common!r}")
    for key, value in common.items():
        if isinstance(value, dict):
            continue
        if key == "agent":
            raise DqnlabError(f"{where}: [common] may not hold agent = {value!r}; each variant names its agent, e.g. [variants.slow] agent = \"naive\"")
        if key in ("preset", "samples", "seeds"):
            raise DqnlabError(f"{where}: [common] may not hold {key} = {value!r}; write {key} = ... at the top of the file, before any table")
        raise DqnlabError(f"{where}: [common] may hold only tables such as [common.learner]; got {key} = {value!r}")
    common = {section: dict(values) for section, values in common.items()}
    texts = [*overrides, *([f"run.eval_every={eval_every}"] if eval_every else [])]
    check_given_once(texts)  # --device D and --eval-every K arrive here as run.device=D and run.eval_every=K
    for text in texts:
        path, value = parse_override(text)
        section, _, key = path.partition(".")
        if section == "run" and key in EXPERIMENT_KEYS:  # Experiment.config would override it for every run
            raise DqnlabError(f"--set {path} does not apply to compare (the experiment sets it for every run); use {EXPERIMENT_KEYS[key]}")
        common.setdefault(section, {})[key] = value
    variant_tables = dict(parse_variant_option(text) for text in variants) if variants else data.get("variants")
    if variants and len(variant_tables) != len(variants):
        raise DqnlabError("--variant names must be unique")
    return build_experiment(
        preset_name=preset or data.get("preset"),
        samples=samples if samples is not None else data.get("samples"),
        seeds=seeds if seeds is not None else data.get("seeds"),
        variant_tables=variant_tables,
        common=common,
        source=f"experiment file {experiment_file}" if experiment_file else "compare",
    )


LEFT_OUT_EXIT = 3  # compare and report: the report was written, but runs failed or were left out of it


def _print_conclusion(summary: dict, out: Path) -> None:
    """The conclusion and where the report is; exit LEFT_OUT_EXIT if any run is missing from it."""
    for line in summary["conclusion"]:
        click.echo(line)
    click.echo(f"report: {out / 'report.html'}")
    runs = summary["runs"]
    left_out = runs["total"] - runs["used"] - runs["diverged"]
    if left_out:
        click.echo(f"{left_out} of {runs['total']} runs failed or are left out of the comparison (the report's "
                   f"Runs section says why); exit code {LEFT_OUT_EXIT}", err=True)  # fmt: skip
        sys.exit(LEFT_OUT_EXIT)


@cli.command("report")
@click.argument("results_dir", type=click.Path(file_okay=False))
def report_command(results_dir):
    """Rebuild summary.json, summary.md, plots and report.html from a results directory's saved runs."""
    from dqnlab.analysis.report import build_report

    with output_dir(results_dir, "results", "dqnlab report", keep=True, create=False):
        summary = build_report(results_dir)
    _print_conclusion(summary, Path(results_dir))


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


cli.add_command(probe_command)
cli.add_command(handset_command)


def main() -> None:
    cli.main(prog_name="dqnlab")
