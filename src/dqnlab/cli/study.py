"""`dqnlab study [NAME]`: the study files in ./studies listed, or one run as `compare --experiment` runs it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dqnlab.cli import cli
from dqnlab.cli.compare import print_conclusion, run_sweep, sweep_options
from dqnlab.errors import DqnlabError
from dqnlab.experiments.events import OnEvent
from dqnlab.experiments.spec import STUDIES, find_study

if TYPE_CHECKING:  # imported when the command runs (cli/__init__.py)
    from dqnlab import api


@cli.command("study")
@click.argument("name", required=False)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Results directory [default: results/NAME]. Rerunning the same command there resumes.")
@sweep_options
def study_command(name, out, backend, address, population_size, workers, time_limit_seconds, overwrite, quiet):
    """Run the study file studies/NAME.toml (or NAME, a path to a .toml file); without NAME, list ./studies.

    Exactly `dqnlab compare --experiment studies/NAME.toml`; a study's [play] table (episodes, max_steps,
    handset) then plays every complete run greedily and writes the decision times to OUT/deploy.json. A
    study with `envs` runs its experiment once per environment, one after another, into OUT/ENV.
    """
    from dqnlab import api
    from dqnlab.experiments.assemble import study_from

    if name is None:
        _list_studies()
        return
    path = find_study(name)
    parts = study_from(path)
    out = Path(out or Path("results") / path.stem)
    codes = []
    for folder, experiment, seconds in api.study_schedule(parts, time_limit_seconds):  # as api.study, the file read once
        where = out / folder
        if seconds is not None and seconds <= 0:
            click.echo(f"time limit reached: {experiment.env().id} not started; rerun the same command to resume into {where}")
            codes.append(0)
            continue
        if folder and not quiet:
            click.echo(f"{experiment.env().id}: {where}")

        def start(on_event: OnEvent, experiment=experiment, where=where, seconds=seconds) -> api.Compared:
            return api.compare_sweep(experiment, where, workers or os.cpu_count() or 1, backend, population_size, address,
                                     overwrite, on_event, seconds, parts.play)  # fmt: skip

        compared = run_sweep(start, experiment.samples, where, quiet)
        if compared.deploy is not None:
            from dqnlab.deploy import deploy_text

            click.echo(deploy_text(compared.deploy), nl=False)
            click.echo(f"deploy: {where / api.DEPLOY}")
        codes.append(print_conclusion(compared.summary, where, compared.remaining.deferred if compared.remaining else 0))
    sys.exit(max(codes, default=0))


def _list_studies() -> None:
    from dqnlab import api

    found = api.studies()
    if not found:
        raise DqnlabError(f"no study files in {STUDIES}/ (each is {STUDIES}/NAME.toml); run dqnlab study from the folder that holds it")
    width = max(len(name) for name in found)
    for name, question in found.items():
        click.echo(f"{name:<{width}}  {question}")
