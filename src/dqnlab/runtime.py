"""Process-level settings: the torch device, a faster CPU allocator, subnormals flushed in Adam.

`resolve_device` turns `run.device` into a torch device, refusing CUDA where
there is none.

Each learn step frees and reallocates a few multi-megabyte gradient and Adam
temporaries. glibc's malloc hands blocks that large back to the kernel on
free (mmap/munmap, heap trimming), so every step then page-faults the memory
in again: about 1,000 minor faults per learn step on the tutorial network,
which doubled the naive agent's step time (benchmarks/RESULTS.md). Raising
glibc's mmap and trim thresholds keeps those blocks in the heap for reuse.
It changes no numbers, only where memory comes from.

Adam's second moment v = 0.999 v + 0.001 g^2 becomes subnormal (below 1.2e-38
in float32) wherever gradients fall below ~1e-19, and a CPU computes on
subnormals 10-100x slower: the naive agent's Adam step on the tutorial network
grew from 0.3 ms to 3.4 ms within 1,500 samples. `flushed_subnormals` runs a
block on one thread with subnormals flushed to zero (x86's FTZ/DAZ, a setting
of the calling thread only, hence one thread) and restores both after. In
Adam this cannot change a float32 update: the step divides by sqrt(v) + eps
with eps = 1e-8, and a v below 1.2e-38 adds less than half a unit in the last
place to eps (the training runs compared in benchmarks/RESULTS.md end with the
same weights bit for bit).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
from typing import Iterator

import numpy as np

import torch

from dqnlab.errors import DqnlabError

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers


@functools.cache
def tune_allocator() -> bool:
    """Keep large freed blocks in glibc's heap; True if applied (False elsewhere)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # only glibc has mallopt's thresholds  # noqa: B018
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # 32 MiB: glibc's largest allowed value
    return bool(ok and mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def resolve_device(name: str) -> torch.device:
    """The torch device for `run.device`, refusing CUDA where there is none."""
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DqnlabError(f"run.device is {name!r} but this machine has no CUDA GPU (or torch is a CPU build)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DqnlabError(f"run.device is {name!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device


@contextlib.contextmanager
def flushed_subnormals(device: torch.device) -> Iterator[None]:
    """On the CPU, run the block on one thread with subnormal floats flushed to zero; restore both after."""
    if device.type != "cpu":
        yield
        return
    threads, flushing = torch.get_num_threads(), np.float32(1e-39) * np.float32(1.0) == 0  # flushing already?
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(bool(flushing))
        torch.set_num_threads(threads)
