"""`dqnlab compare` and `dqnlab report`: variants x paired seeds, trained, resumed and compared."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from dqnlab import api
from dqnlab.cli import cli
from dqnlab.cli.display import SweepDisplay
from dqnlab.config import PRESETS
from dqnlab.errors import DqnlabError
from dqnlab.experiments.assemble import experiment_from
from dqnlab.experiments.backends import NAMES

LEFT_OUT_EXIT = 3  # compare and report: the report was written, but runs failed or were left out of it


@cli.command("compare")
@click.option("--experiment", "experiment_file", type=click.Path(dir_okay=False), default=None, help="TOML experiment file: preset, samples, seeds, [common.*] and [variants.NAME] tables.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None, help="Base configuration of every variant [default: tutorial].")
@click.option("--samples", type=int, default=None, help="Sample budget of every run [default: the preset's].")
@click.option("--seeds", type=int, default=None, help="Paired seeds per variant: FIRST..FIRST+N-1 [default: 10].")
@click.option("--first-seed", type=click.IntRange(min=0), default=None, help="The first of --seeds N consecutive seeds [default: 0]. Use seeds no setting was tuned on.")
@click.option("--variant", "variants", multiple=True, metavar="NAME:KEY=VALUE,...", help="A variant, e.g. replay16:replay.batch_size=16,replay.warmup=16 or slow:agent=naive,learner.lr=1e-5. Repeatable [default: naive and replay].")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="A setting shared by every variant, as a TOML literal. Repeatable.")
@click.option("--eval-every", type=click.IntRange(min=1), default=None, help="Greedy evaluation every K samples (run.eval_every), reported beside training scores.")
@click.option("--backend", type=click.Choice(list(NAMES)), default="local", show_default=True, help="local: one process per run at a time. population: each variant's seeds train together as one batched computation. ray: one Ray task per run (needs dqnlab[ray]).")
@click.option("--address", default=None, help="Ray backend: the cluster to join (as for ray.init, e.g. auto or HEAD_IP:6379) [default: start a local Ray instance].")
@click.option("--population-size", type=click.IntRange(min=1), default=None, help="Population backend: most seeds per population [default: each variant's seeds cut into one population per worker]. Ray backend: run populations of up to this many seeds as Ray tasks [default: one run per task].")
@click.option("--device", default=None, help="cpu, cuda or cuda:N for every run (run.device) [default: the preset's, cpu].")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Local backend: worker processes, one torch thread each. Population backend: processes training populations side by side, one torch thread each. Ray backend without --address: CPUs of the local Ray instance [default: CPU cores].")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Results directory [default: results/compare-PRESET]. Rerunning the same command there resumes.")
@click.option("--overwrite", is_flag=True, help="Replace a results directory that holds a different experiment.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the conclusion.")
def compare_command(experiment_file, preset, samples, seeds, first_seed, variants, overrides, eval_every, backend, address, population_size, device, workers, out, overwrite, quiet):
    """Train variants x paired seeds and compare them per episode, per sample and per second.

    Seed k gives every variant the same initial weights and environment starts.
    Writes runs/, summary.json, summary.md, plots/ and a self-contained report.html.
    """
    if first_seed is not None:
        if seeds is None:
            raise DqnlabError("--first-seed needs --seeds N (the number of consecutive seeds)")
        if seeds < 1:
            raise DqnlabError(f"--seeds must be >= 1; got {seeds}")
        seeds = range(first_seed, first_seed + seeds)
    experiment = experiment_from(experiment_file, preset, samples, seeds, variants, overrides, eval_every, device)
    out = Path(out or f"results/compare-{experiment.preset}")
    display = SweepDisplay(experiment.samples, out, quiet)
    with display.live:
        try:
            summary = api.compare(experiment, out, workers or os.cpu_count() or 1, backend, population_size, address,
                                  overwrite, on_event=display.event)  # fmt: skip
        except KeyboardInterrupt:
            display.live.stop()
            click.echo(f"interrupted: finished runs are kept; rerun the same command to resume into {out}", err=True)
            sys.exit(130)
    if display.failed and not quiet:
        click.echo(f"{display.failed} run(s) failed this time; rerunning the same command retries them", err=True)
    _print_conclusion(summary, out)


@cli.command("report")
@click.argument("results_dir", type=click.Path(file_okay=False))
def report_command(results_dir):
    """Rebuild summary.json, summary.md, plots and report.html from a results directory's saved runs."""
    _print_conclusion(api.report(results_dir), Path(results_dir))


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
