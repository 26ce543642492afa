"""`dqnlab compare` and `dqnlab report`: variants x paired seeds, trained, resumed and compared.

`sweep_options` and `run_sweep` are shared with `dqnlab study` (cli/study.py), which runs a study file as
`compare --experiment` does.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import click

from dqnlab.cli import cli
from dqnlab.config import PRESETS
from dqnlab.errors import DqnlabError
from dqnlab.experiments.events import OnEvent
from dqnlab.experiments.spec import BACKENDS

if TYPE_CHECKING:  # the command imports dqnlab.api (torch, matplotlib, Gymnasium) when it runs, not before --help
    from dqnlab import api

LEFT_OUT_EXIT = 3  # compare and report: the report was written, but runs failed or were left out of it


def _minutes_as_seconds(ctx, param, value: float | None) -> float | None:
    """--time-limit: a finite number of minutes > 0 (click's FloatRange would let nan and inf through), in seconds."""
    if value is None:
        return None
    if not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a number of minutes > 0; got {value}")
    return value * 60


def sweep_options(command):
    """The options of every command that runs a sweep (compare, study): where and how its runs train."""
    options = [
        click.option("--backend", type=click.Choice(list(BACKENDS)), default="local", show_default=True, help="local: one process per run at a time. population: each variant's seeds train together as one batched computation. ray: one Ray task per run (needs dqnlab[ray])."),
        click.option("--address", default=None, help="Ray backend: the cluster to join (as for ray.init, e.g. auto or HEAD_IP:6379) [default: start a local Ray instance]."),
        click.option("--population-size", type=click.IntRange(min=1), default=None, help="Population backend: most seeds per population [default: each variant's seeds cut into one population per worker]. Ray backend: run populations of up to this many seeds as Ray tasks [default: one run per task]."),
        click.option("--workers", type=click.IntRange(min=1), default=None, help="Local backend: worker processes, one torch thread each. Population backend: processes training populations side by side, one torch thread each. Ray backend without --address: CPUs of the local Ray instance [default: CPU cores]."),
        click.option("--time-limit", "time_limit_seconds", type=float, default=None, callback=_minutes_as_seconds, metavar="MINUTES", help="Start no run (or population) once this many minutes have passed; runs in flight finish, the report covers what exists, and a line says what the rest costs. Rerun to resume."),
        click.option("--overwrite", is_flag=True, help="Replace a results directory that holds a different experiment."),
        click.option("-q", "--quiet", is_flag=True, help="Print only the conclusion."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command("compare")
@click.option("--experiment", "experiment_file", type=click.Path(dir_okay=False), default=None, help="TOML experiment file: preset, samples, seeds, [common.*] and [variants.NAME] tables.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None, help="Base configuration of every variant [default: tutorial].")
@click.option("--samples", type=int, default=None, help="Sample budget of every run [default: the preset's].")
@click.option("--seeds", type=int, default=None, help="Paired seeds per variant: FIRST..FIRST+N-1 [default: 10].")
@click.option("--first-seed", type=click.IntRange(min=0), default=None, help="The first of --seeds N consecutive seeds [default: 0]. Use seeds no setting was tuned on.")
@click.option("--variant", "variants", multiple=True, metavar="NAME:KEY=VALUE,...", help="A variant, e.g. replay16:replay.batch_size=16,replay.warmup=16 or slow:agent=naive,learner.lr=1e-5. Repeatable [default: naive and replay].")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="A setting shared by every variant, as a TOML literal. Repeatable.")
@click.option("--eval-every", type=click.IntRange(min=1), default=None, help="Greedy evaluation every K samples (run.eval_every), reported beside training scores.")
@click.option("--env", "env_id", default=None, help="Gymnasium id every run trains on (env.id), e.g. Acrobot-v1 or MinAtar/Breakout-v1 [default: the preset's].")
@click.option("--device", default=None, help="cpu, cuda or cuda:N for every run (run.device) [default: the preset's, cpu].")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Results directory [default: results/compare-PRESET]. Rerunning the same command there resumes.")
@sweep_options
def compare_command(experiment_file, preset, samples, seeds, first_seed, variants, overrides, eval_every, env_id, device, out,
                    backend, address, population_size, workers, time_limit_seconds, overwrite, quiet):  # fmt: skip
    """Train variants x paired seeds and compare them per episode, per sample and per second.

    Seed k gives every variant the same initial weights and environment starts; runs start seed-major, so a
    sweep cut short leaves whole pairs. Writes runs/, summary.json, summary.md, plots/ and a self-contained report.html.
    """
    from dqnlab import api
    from dqnlab.experiments.assemble import experiment_from

    if first_seed is not None:
        if seeds is None:
            raise DqnlabError("--first-seed needs --seeds N (the number of consecutive seeds)")
        if seeds < 1:
            raise DqnlabError(f"--seeds must be >= 1; got {seeds}")
        seeds = range(first_seed, first_seed + seeds)
    experiment = experiment_from(experiment_file, preset, samples, seeds, variants, overrides, eval_every, device, env_id)
    out = Path(out or f"results/compare-{experiment.preset}")

    def start(on_event: OnEvent) -> api.Compared:
        return api.compare_sweep(experiment, out, workers or os.cpu_count() or 1, backend, population_size, address,
                                 overwrite, on_event, time_limit_seconds)  # fmt: skip

    compared = run_sweep(start, experiment.samples, out, quiet)
    sys.exit(print_conclusion(compared.summary, out, compared.remaining.deferred if compared.remaining else 0))


def run_sweep(start: Callable[[OnEvent], api.Compared], samples: int, out: Path, quiet: bool) -> api.Compared:
    """`start(on_event)` under the live display; then the failures, and what a time limit left and what it costs.

    Ctrl-C exits 130, saying that finished runs are kept.
    """
    from dqnlab.cli.display import SweepDisplay, remaining_line

    display = SweepDisplay(samples, out, quiet)
    with display.live:
        try:
            compared = start(display.event)
        except KeyboardInterrupt:
            display.live.stop()
            click.echo(f"interrupted: finished runs are kept; rerun the same command to resume into {out}", err=True)
            sys.exit(130)
    if display.failed and not quiet:
        click.echo(f"{display.failed} run(s) failed this time; rerunning the same command retries them", err=True)
    if compared.remaining is not None:
        click.echo(remaining_line(compared.remaining))
    return compared


@cli.command("report")
@click.argument("results_dir", type=click.Path(file_okay=False))
def report_command(results_dir):
    """Rebuild summary.json, summary.md, plots and report.html from a results directory's saved runs."""
    from dqnlab import api

    sys.exit(print_conclusion(api.report(results_dir), Path(results_dir)))


def print_conclusion(summary: dict, out: Path, deferred: int = 0) -> int:
    """Print the conclusion and where the report is; return LEFT_OUT_EXIT if runs are missing from it
    other than the `deferred` ones a time limit left for later, else 0."""
    for line in summary["conclusion"]:
        click.echo(line)
    click.echo(f"report: {out / 'report.html'}")
    runs = summary["runs"]
    left_out = runs["total"] - runs["used"] - runs["diverged"] - deferred
    if left_out > 0:
        click.echo(f"{left_out} of {runs['total']} runs failed or are left out of the comparison (the report's "
                   f"Experiment section says why); exit code {LEFT_OUT_EXIT}", err=True)  # fmt: skip
        return LEFT_OUT_EXIT
    return 0
