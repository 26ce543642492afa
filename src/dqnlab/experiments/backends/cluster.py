"""The Ray backend: every run a Ray task, on a local Ray instance or a cluster.

Each run is one task asking for one CPU (and one GPU when its `run.device`
is CUDA); with a population size, each task is instead a population of up to
that many seeds of one variant (`population.py`), on one CPU or one GPU. The task trains into a temporary directory on whichever node runs
it and returns the run directory's files through Ray, so results land in the
driver's results directory without any shared file system; the driver
writes them (result.json last) exactly as a local run would have.

Faults: a task whose worker or node dies is resubmitted, at most `retries`
times (the count is written into the run's result.json as `attempts`, and
the report says how many runs needed it). A run that fails for its own
reasons comes back as a failed outcome and is recorded like the local
backend's. Ctrl-C cancels every queued and running task; finished runs are
on disk, so rerunning the command resumes.
"""

from __future__ import annotations

import os
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from dqnlab.errors import DqnlabError
from dqnlab.experiments.backends.local import FAULT_VARIABLE
from dqnlab.experiments.backends.population import interleave, population_key, populations, run_populations
from dqnlab.experiments.events import Advanced, Event, Finished, OnEvent, Retried
from dqnlab.experiments.runner import RunTask, TimeLimit, fresh_run_dir, paired_first, raise_disk_error, run_task
from dqnlab.rundir.disk import json_text, make_dir, parse_json, write_bytes
from dqnlab.rundir.layout import RESULT

RETRIES = 2  # resubmissions after a worker or node died


def require_ray():
    try:
        import ray
    except ImportError:
        raise DqnlabError("--backend ray needs Ray: pip install 'dqnlab[ray]'") from None
    return ray


@contextmanager
def ray_session(address: str | None = None, cpus: int | None = None, cuda: bool = False) -> Iterator[Any]:
    """Join the cluster at `address` (or start a local instance of `cpus` CPUs) unless Ray is already up; leave as found.

    `cuda`: the runs need a GPU; a cluster without one is refused.
    """
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        _check_reachable(address)
        try:
            ray.init(address=address, num_cpus=None if address else cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)  # fmt: skip
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise DqnlabError(f"cannot join a Ray cluster at {address!r}: {str(error).splitlines()[0]}") from None
    try:
        if cuda and not ray.cluster_resources().get("GPU"):
            raise DqnlabError("run.device is cuda but the Ray cluster has no GPU")
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody answers at (ray.init would wait for minutes)."""
    if address is None or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise DqnlabError(f"--address must be auto, HOST:PORT or ray://HOST:PORT; got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise DqnlabError(f"cannot reach a Ray cluster at {address}: {error.strerror or error}") from None


def _execute(tasks: list[RunTask], population: bool, fault: bool) -> list[tuple[dict[str, Any], dict[str, bytes]]]:
    """On a Ray worker: train one run, or one population, into a temporary directory; return outcomes and files."""
    import torch

    torch.set_num_threads(1)  # one CPU per task, as Ray accounts for it

    def progress(samples: int) -> None:
        if fault:  # tests kill the worker mid-run this way (first attempt only)
            os._exit(70)

    with tempfile.TemporaryDirectory(prefix="dqnlab-") as tmp:
        local = [RunTask(t.variant, t.seed, t.config, Path(tmp) / f"run-{i}", root=Path(tmp)) for i, t in enumerate(tasks)]
        if population:
            outcomes: dict[str, dict[str, Any]] = {}

            def event(message: Event) -> None:
                if isinstance(message, Finished):
                    outcomes[message.key] = message.outcome
                elif isinstance(message, Advanced):
                    progress(message.samples)

            run_populations([local], event)
            results = [outcomes[t.key] for t in local]
        else:
            results = [run_task(t, progress) for t in local]
        return [(outcome, _files(t.run_dir)) for outcome, t in zip(results, local)]


def _files(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def run_ray(tasks: list[RunTask], on_event: OnEvent, population_size: int | None = None,
            retries: int = RETRIES, limit: TimeLimit | None = None) -> None:
    """Execute `tasks` as Ray tasks (inside `ray_session`): one per run, or one per population of up to
    `population_size` seeds of a variant when that is given, seed-major (whole pairs first). Events as
    `run_local`'s, plus Retried.

    Without a time limit every unit is submitted at once (an autoscaling cluster sees the whole demand);
    with one, only as many as the cluster runs side by side (`_capacity`), the next as one returns, so
    that none starts once the limit has passed.
    """
    ray = require_ray()
    remote = ray.remote(_execute)
    doomed = os.environ.get(FAULT_VARIABLE)
    units = interleave(populations(tasks, population_size)) if population_size else [[task] for task in paired_first(tasks)]
    queue = list(reversed(units))  # popped from the end: first unit first
    limit = limit or TimeLimit()
    limit.parallel = _capacity(ray, units) if limit.seconds is not None else max(1, len(units))
    limit.unit = "population" if population_size else "run"
    pending: dict[Any, tuple[list[RunTask], int, float]] = {}

    def submit(unit: list[RunTask], attempt: int) -> None:
        gpus = 1 if unit[0].config.run.device.startswith("cuda") else 0
        fault = attempt == 1 and any(task.key == doomed for task in unit)
        ref = remote.options(num_cpus=1, num_gpus=gpus, max_retries=0).remote(unit, population_size is not None, fault)
        pending[ref] = (unit, attempt, limit.now())

    def fill() -> None:
        while queue and len(pending) < limit.parallel and limit.may_start():
            submit(queue.pop(), 1)

    try:
        fill()
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            unit, attempt, since = pending.pop(ref)
            try:
                landed = [_land(task, outcome, files, attempt) for task, (outcome, files) in zip(unit, ray.get(ref))]
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.OutOfMemoryError,
                    ray.exceptions.ObjectLostError, ray.exceptions.LocalRayletDiedError) as error:  # fmt: skip
                reason = f"{type(error).__name__}: {str(error).splitlines()[0]}"
                if attempt <= retries:
                    on_event(Retried(population_key(unit), f"attempt {attempt} lost ({reason}); resubmitted"))
                    submit(unit, attempt + 1)
                    continue
                landed = [{"status": "failed", "error": f"lost its worker {attempt} times; last: {reason}"} for _ in unit]
            except ray.exceptions.RayError as error:
                landed = [{"status": "failed", "error": f"{type(error).__name__}: {str(error).splitlines()[0]}"} for _ in unit]
            limit.finished(unit, limit.now() - since)
            for task, outcome in zip(unit, landed):
                on_event(Finished(task.key, outcome))
            fill()
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def _capacity(ray: Any, units: list[list[RunTask]]) -> int:
    """Units the cluster runs side by side: each asks for one CPU (and one GPU on CUDA)."""
    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1)
    if units and units[0][0].config.run.device.startswith("cuda"):
        slots = min(slots, resources.get("GPU", 1))
    return max(1, int(slots))


def _land(task: RunTask, outcome: dict[str, Any], files: dict[str, bytes], attempt: int) -> dict[str, Any]:
    """Write a finished run's files into its directory on this machine, result.json last."""
    raise_disk_error(outcome)  # the worker's disk was full: stop, as the local backends do
    fresh_run_dir(task)
    for name, data in sorted(files.items(), key=lambda item: item[0] == RESULT):
        path = task.run_dir / name
        make_dir(path.parent)
        if name == RESULT and outcome.get("status") != "failed":
            outcome = {**parse_json(data, f"{task.key}'s result.json"), "attempts": attempt}
            data = json_text(outcome).encode()
        write_bytes(path, data)
    return outcome
