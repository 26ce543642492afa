"""What a run costs the machine, checked before anything is written: memory against memory, files against free disk.

Every figure is a lower bound computed from what the engine preallocates, so
a refusal is certain, never a guess:

- the replay memory: min(replay.capacity or run.samples, run.samples)
  transitions of `bytes_per_transition(obs_dim, binary)` bytes
  (`engine/replay.py`: float rows, or bits for binary frames),
  and, with --save-replay, their copy in the learner's dtypes
  (`ring_bytes_per_transition`); with replay.prioritized, the sum-tree's
  float64 nodes, about 16/15 per slot (`priority.SumTree.level_sizes`);
- the network: its parameters (each member's block padded as
  `StackedQNetwork` pads it) x 4 bytes x 4 copies: weights, gradients and
  Adam's two moments (`engine/kernel.py`), and a fifth with a target network;
- the learn step's buffers: the forward pass over [obs; next_obs] (2 x
  replay.batch_size rows of every layer), a convolution's patches, and the
  backward pass's gradients (`kernel.LearnStep`);
- a learner that does not act (behaviour.actor other than "self"): the
  recorded stream of its behaviour's run.samples transitions
  (`stream.Stream.nbytes`), held while it learns;
- on disk: weights.pt and run.samples // run.checkpoint_every checkpoints of
  at least 4 bytes per parameter each (and replay.npz with --save-replay, at
  least the copy's bytes).

Memory is measured against this machine's physical memory, or the GPU's
when `run.device` is CUDA; files against the free space of the disk that
holds the output directory (its nearest existing ancestor). A population of
N members, or N runs held at once, costs N times one run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from dqnlab.config import Config
from dqnlab.engine.envs import EnvSpec, make_env
from dqnlab.engine.network import ALIGN, Shape
from dqnlab.engine.priority import SumTree
from dqnlab.engine.replay import bytes_per_transition, ring_bytes_per_transition
from dqnlab.engine.stream import Stream
from dqnlab.engine.training import replay_capacity
from dqnlab.errors import DqnlabError

FLOAT = 4  # bytes: parameters, gradients, moments and activations are float32
COPIES = 4  # the network's weights, their gradients, and Adam's two moments (a target network adds one)
TREE_NODE = 8  # bytes: prioritized replay's sum-tree is float64
UNITS = ("bytes", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


@dataclass(frozen=True)
class Cost:
    """What one run holds in memory and writes to disk, in bytes, with the figures they come from."""

    config: Config
    transitions: int  # replay slots preallocated
    transition_bytes: int  # in the replay memory
    saved_bytes: int  # per transition of the copy --save-replay makes at the end (and writes); 0 without
    tree_bytes: int  # prioritized replay's sum-tree; 0 without
    copies: int  # of the parameters: COPIES, one more with a target network
    parameters: int  # floats of the engine's network, padded as StackedQNetwork pads them
    file_parameters: int  # floats in a weights file (unpadded)
    buffer_floats: int  # the learn step's activations and gradients
    checkpoints: int
    stream_bytes: int = 0  # the recorded stream a learner that does not act learns from; 0 for one that acts

    @property
    def replay(self) -> int:
        return self.transitions * (self.transition_bytes + self.saved_bytes) + self.tree_bytes

    @property
    def network(self) -> int:
        return self.parameters * FLOAT * self.copies

    @property
    def buffers(self) -> int:
        return self.buffer_floats * FLOAT

    @property
    def memory(self) -> int:
        return self.replay + self.network + self.buffers + self.stream_bytes

    @property
    def weight_files(self) -> int:
        return self.checkpoints + 1  # the checkpoints and weights.pt

    @property
    def disk(self) -> int:
        return self.weight_files * self.file_parameters * FLOAT + self.transitions * self.saved_bytes


def run_cost(config: Config, spec: EnvSpec, save_replay: bool = False) -> Cost:
    """One run's cost: `spec` gives the observation and action sizes the network and replay memory take."""
    conv = config.network.conv
    shape = Shape(spec.obs_dim, spec.n_actions, config.network.hidden, conv, spec.frame if conv else None)  # refuses conv on vectors
    layers = [(fan_in, fan_out) for fan_in, fan_out, _ in shape.layers()]
    outputs = [fan_out * positions for _, fan_out, positions in shape.layers()]  # floats per row out of each layer
    patches = sum(fan_in * positions for fan_in, _, positions in shape.layers()[: len(conv)])  # floats per row of patches
    batch = config.replay.batch_size
    rows = 2 * batch if config.learner.td_gradient == "full" else batch  # rows the backward pass runs over
    every = config.run.checkpoint_every
    slots = replay_capacity(config)
    return Cost(
        config=config,
        transitions=slots,
        transition_bytes=bytes_per_transition(spec.obs_dim, spec.binary),
        saved_bytes=ring_bytes_per_transition(spec.obs_dim) if save_replay else 0,
        tree_bytes=sum(SumTree.level_sizes(slots)) * TREE_NODE if config.replay.prioritized else 0,
        copies=COPIES + (config.learner.target_update != "none"),
        parameters=sum(_padded(i * o) + _padded(o) for i, o in layers),
        file_parameters=sum(i * o + o for i, o in layers),
        buffer_floats=2 * batch * (spec.obs_dim + sum(outputs) + patches) + rows * sum(outputs) + layers[0][0] * layers[0][1],
        checkpoints=config.run.samples // every if every else 0,
        stream_bytes=0 if config.behaviour.actor == "self" else Stream.nbytes(config.run.samples, 1, spec.obs_dim),
    )


def check_cost(config: Config, spec: EnvSpec, members: int = 1, out: str | Path | None = None,
               save_replay: bool = False) -> None:  # fmt: skip
    """Refuse a run (or `members` runs held at once) that cannot fit in memory, or whose files cannot fit at `out`."""
    cost = run_cost(config, spec, save_replay)
    held = f"{members:,} runs held at once" if members > 1 else ""
    _check_memory(cost, members, held, "fewer members")
    if out is not None:
        _check_disk(cost, members, out)


def check_experiment_cost(experiment: Any, backend: str, workers: int, population_size: int | None, out: str | Path,
                          address: str | None = None) -> None:  # fmt: skip
    """Refuse an experiment whose runs held at once cannot fit in memory, or whose files cannot fit at `out`.

    Runs held at once, for each variant's runs still to do: local, one per
    worker (min(workers, runs)); population, `workers` populations of
    `population_size` side by side (without one, all of them; on a GPU, one
    population); ray, a local instance's `workers` CPUs each holding one
    task (one run, or a population of `population_size`). On a Ray cluster
    (`address`) the nodes' memory is not known here, so only the disk is checked.
    """
    out = Path(out)
    specs: dict[Any, EnvSpec] = {}
    files = weight_files = runs = 0
    for variant in experiment.variants:
        config = experiment.config(variant, experiment.seeds[0])
        if config.env not in specs:
            env, specs[config.env] = make_env(config.env)
            env.close()
        cost = run_cost(config, specs[config.env])
        todo = sum(not _kept(experiment, variant, seed, out) for seed in experiment.seeds)  # kept runs cost nothing
        if backend == "population" and config.run.device.startswith("cuda"):  # one population at a time, on the GPU
            members = min(population_size or todo, todo)
            held, fewer = f"a population of {members:,} seeds of variant {variant.name!r}", "a smaller --population-size"
        elif backend == "population":  # populations side by side, one per worker process
            members = min(todo, workers * population_size) if population_size else todo
            held = f"{members:,} seeds of variant {variant.name!r} in populations side by side on {workers:,} worker(s)"
            fewer = "fewer --workers or a smaller --population-size" if population_size else "a --population-size"
        elif backend == "ray":
            members = min(todo, workers * (population_size or 1))
            held = f"{members:,} runs of variant {variant.name!r} on a local Ray instance of {workers:,} CPUs"
            fewer = "fewer --workers or a smaller --population-size" if population_size else "fewer --workers"
        else:
            members = min(workers, todo)
            held, fewer = f"{members:,} runs of variant {variant.name!r} at once, one per worker", "fewer --workers"
        if members and not (backend == "ray" and address is not None):
            _check_memory(cost, members, held, fewer)
        files, weight_files, runs = files + todo * cost.disk, weight_files + todo * cost.weight_files, runs + todo
    if runs:
        what = f"the {runs:,} runs still to do would write {weight_files:,} weight files (checkpoints and weights.pt)"
        _refuse_disk(files, out, what, "raise run.checkpoint_every, use a smaller network, or choose an --out with more space")


def _kept(experiment: Any, variant: Any, seed: int, out: Path) -> bool:
    """Whether `out` holds a finished run of this variant and seed (result.json alone: resume may still redo it,
    so the runs counted as still to do are at most those that will run and every figure stays a lower bound)."""
    from dqnlab.experiments.runner import KEPT_STATUSES
    from dqnlab.rundir.layout import run_dir_for
    from dqnlab.rundir.reading import RunFileError, run_status

    try:
        return run_status(run_dir_for(out, variant.name, seed)) in KEPT_STATUSES
    except RunFileError:
        return False


# ---------------------------------------------------------------- memory


def _check_memory(cost: Cost, members: int, held: str, fewer: str) -> None:
    limit = _memory_limit(cost.config.run.device)
    if limit is None:
        return
    available, against = limit
    total = cost.memory * members
    if total <= available:
        return
    config, times = cost.config, f" x {held}" if members > 1 else ""
    copies = f" + {cost.saved_bytes} bytes copied out with --save-replay" if cost.saved_bytes else ""
    tree = f", + {_size(cost.tree_bytes)} of sum-tree for replay.prioritized" if cost.tree_bytes else ""
    parts = [
        (cost.replay, f"the replay memory would need {_size(cost.replay * members)} ({cost.transitions:,} transitions x "
                      f"{cost.transition_bytes} bytes per transition{copies}{tree}{times})", _replay_advice(config)),
        (cost.network, f"network.hidden {list(config.network.hidden)} would need {_size(cost.network * members)} "
                       f"({cost.parameters:,} parameters x {FLOAT} bytes x {cost.copies} copies: {_copies(cost.copies)}{times})",
         "use narrower or fewer hidden layers"),
        (cost.buffers, f"the learn step's buffers would need {_size(cost.buffers * members)} ({cost.buffer_floats:,} "
                       f"floats x {FLOAT} bytes for replay.batch_size {config.replay.batch_size:,} and network.hidden "
                       f"{list(config.network.hidden)}{times})",
         "lower replay.batch_size or network.hidden"),
        (cost.stream_bytes, f"the recorded stream of behaviour {config.behaviour.actor!r} would need "
                            f"{_size(cost.stream_bytes * members)} ({config.run.samples:,} transitions{times})",
         "lower run.samples"),
    ]  # fmt: skip
    largest, what, advice = max(parts, key=lambda part: part[0])
    if largest * members <= available:  # no part alone, but all of them together
        what = (f"{'these runs' if members > 1 else 'this run'} would need {_size(total)} of memory (replay "
                f"{_size(cost.replay * members)}, network {_size(cost.network * members)}, learn-step buffers "
                f"{_size(cost.buffers * members)}, recorded stream {_size(cost.stream_bytes * members)}{times})")  # fmt: skip
        advice = "make it smaller" if members == 1 else f"make it smaller or use {fewer}"
    elif members > 1:
        advice += f", or use {fewer}"
    raise DqnlabError(f"{what}, more than {against}; {advice}")


def _copies(copies: int) -> str:
    if copies > COPIES:
        return "weights, gradients, Adam's two moments and the target network"
    return "weights, gradients and Adam's two moments"


def _replay_advice(config: Config) -> str:
    capacity, samples = config.replay.capacity, config.run.samples
    if capacity is None:
        return "lower run.samples or set replay.capacity"
    return "lower replay.capacity" if capacity < samples else "lower run.samples or replay.capacity"


def _memory_limit(device: str) -> tuple[int, str] | None:
    """(bytes, what they are) of the memory a run on `device` lives in; None where it cannot be known."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return None  # runtime.resolve_device refuses the run with its own line
        index = int(device.partition(":")[2] or torch.cuda.current_device())
        if index >= torch.cuda.device_count():
            return None
        total = torch.cuda.get_device_properties(index).total_memory
        return total, f"the {_size(total)} of memory of GPU cuda:{index}"
    total = physical_memory()
    return total, f"this machine's {_size(total)} of physical memory"


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# ---------------------------------------------------------------- disk


def _check_disk(cost: Cost, members: int, out: str | Path) -> None:
    config, runs = cost.config, f" for each of {members:,} runs" if members > 1 else ""
    every = config.run.checkpoint_every
    if every:
        what = (f"run.checkpoint_every {every:,} with run.samples {config.run.samples:,} would write {cost.checkpoints:,} "
                f"checkpoints and weights.pt{runs}, {cost.weight_files * members:,} files of at least "
                f"{_size(cost.file_parameters * FLOAT)} each")  # fmt: skip
    else:
        what = f"weights.pt{runs} would take at least {_size(cost.file_parameters * FLOAT)}"
    if cost.saved_bytes:
        what += f", and replay.npz at least {_size(cost.transitions * cost.saved_bytes)}"
    advice = "raise run.checkpoint_every or choose an --out with more space" if every else "choose an --out with more space"
    one_file = not every and members == 1 and not cost.saved_bytes
    _refuse_disk(cost.disk * members, Path(out), what, advice, total=not one_file)


def _refuse_disk(need: int, out: Path, what: str, advice: str, total: bool = True) -> None:
    where = _existing_ancestor(out)
    free = shutil.disk_usage(where).free
    if need > free:
        in_all = f", {_size(need)} in all," if total else ","
        raise DqnlabError(f"{what}{in_all} more than the {_size(free)} free on the disk at {where}; {advice}")


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# ---------------------------------------------------------------- helpers


def _padded(count: int) -> int:
    return -(-count // ALIGN) * ALIGN


def _size(count: int) -> str:
    """Bytes in SI units: 46.0 TB. Integer arithmetic, so sizes beyond a float's range print too."""
    if count < 1000:
        return f"{count} bytes"
    unit = min((count.bit_length() * 30103 // 100000) // 3, len(UNITS) - 1)  # ~ floor(log10(count)) // 3
    while unit > 1 and count < 1000**unit:
        unit -= 1
    value = Decimal(count) / Decimal(1000**unit)
    if value >= 1000:  # beyond yottabytes
        return f"{value:.2e} {UNITS[unit]}"
    return f"{value:.1f} {UNITS[unit]}"
