"""The population backend: each variant's seeds train together as populations.

The tasks of one variant (the runs still to do) are cut into populations of
at most `size` members (by default, as many populations as there are worker
processes, of near-equal size); each population is one `train_population`
call (the engine every backend uses, here with N > 1) on one torch thread.
With one worker the populations train one after another in this process;
with more, on that many worker processes side by side (`local.run_local`),
one thread each. On a GPU (`run.device` cuda) they train in this process,
one after another. Members write
ordinary run directories through `RunWriter`, exactly as single runs do, so
resume, `report` and everything downstream read them unchanged. A
population that raises reports each of its members failed and the sweep goes
on; Ctrl-C leaves each member's finished episodes on disk without
result.json, so the next run of the command redoes them.
"""

from __future__ import annotations

import contextlib
from itertools import groupby

import torch

from dqnlab.engine.training import train_population
from dqnlab.errors import DqnlabError
from dqnlab.experiments.events import Advanced, Ended, Finished, OnEvent, Started
from dqnlab.experiments.runner import RunTask, TimeLimit, fresh_run_dir
from dqnlab.experiments.trainrun import behaviour_network, finish
from dqnlab.rundir.disk import DiskError
from dqnlab.rundir.writer import RunWriter


def populations(tasks: list[RunTask], size: int | None = None, parts: int = 1) -> list[list[RunTask]]:
    """The tasks grouped by variant (in order), each group cut into chunks of at most `size`
    (None: into `parts` chunks of near-equal size)."""
    chunks = []
    for _, group in groupby(tasks, key=lambda task: task.variant):
        members = list(group)
        step = size or -(-len(members) // max(1, min(parts, len(members))))
        chunks += [members[i : i + step] for i in range(0, len(members), step)]
    return chunks


def interleave(chunks: list[list[RunTask]]) -> list[list[RunTask]]:
    """Populations in turn, one of each variant: the k-th of every variant (the same seeds, when the same are
    to do) before any variant's (k+1)-th, so a sweep stopped part way leaves whole pairs."""
    by_variant: dict[str, list[list[RunTask]]] = {}
    for chunk in chunks:
        by_variant.setdefault(chunk[0].variant, []).append(chunk)
    rounds = max((len(group) for group in by_variant.values()), default=0)
    return [group[k] for k in range(rounds) for group in by_variant.values() if k < len(group)]


def population_key(members: list[RunTask]) -> str:
    seeds = [task.seed for task in members]
    return f"{members[0].variant}/{len(seeds)} seeds" if len(seeds) > 1 else members[0].key


def run_populations(chunks: list[list[RunTask]], on_event: OnEvent, progress_every: int = 500,
                    limit: TimeLimit | None = None) -> None:
    """Train populations one after another in this process, on one torch thread: Started, Advanced and
    Ended per population, Finished per member. None starts once `limit` has passed."""
    limit = limit or TimeLimit()
    limit.parallel, limit.unit = 1, "population"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for members in chunks:
            if not limit.may_start():
                break
            began = limit.now()
            run_population(members, on_event, progress_every)
            limit.finished(members, limit.now() - began)
    finally:
        torch.set_num_threads(previous)


def run_population(members: list[RunTask], on_event: OnEvent, progress_every: int) -> None:
    """Train one population into its members' run directories, reporting its events."""
    key = population_key(members)
    writers = []
    for task in members:
        fresh_run_dir(task)
        writers.append(RunWriter(task.run_dir, task.config))
    on_event(Started(key))
    try:
        results = train_population(
            [task.config for task in members],
            on_episode=lambda k, record: writers[k].episode(record),
            on_progress=lambda samples: on_event(Advanced(key, samples)),
            on_checkpoint=lambda k, samples, network: writers[k].checkpoint(samples, network.state_dict()),
            on_evaluation=lambda k, record: writers[k].evaluation(record),
            progress_every=progress_every, behaviour_network=behaviour_network(members[0].config),
        )  # fmt: skip
    except (KeyboardInterrupt, DiskError):  # the user or the disk stops the sweep; unfinished runs resume later
        for writer in writers:
            with contextlib.suppress(DqnlabError):
                writer.close()
        raise
    except Exception as error:  # one population's crash must not stop the sweep
        for task, writer in zip(members, writers):
            writer.close()
            on_event(Finished(task.key, {"status": "failed", "error": f"{type(error).__name__}: {error}"}))
    else:
        alone = len(members) == 1 and members[0].clock == "own" and torch.get_num_threads() == 1
        clock = "own" if alone else "shared"
        for task, writer, result in zip(members, writers, results):
            on_event(Finished(task.key, finish(writer, result, backend="population", clock=clock)))
    on_event(Ended(key))
