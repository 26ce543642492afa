"""Process-level settings: the torch device, a faster CPU allocator, denormals flushed.

`resolve_device` turns `run.device` into a torch device, refusing CUDA where
there is none.

`flushed_denormals` runs training with subnormal floats (below 1.2e-38 in
float32) flushed to zero, as XLA does on CPUs. Adam's second moment of a
gradient below ~1e-19 is subnormal, and CPUs compute on subnormals 10-100x
slower: without flushing, the naive agent's Adam step on the tutorial
network grew from 0.3 ms to 3.4 ms within 1,500 samples
(benchmarks/RESULTS.md). Flushing changes only numbers that small (an Adam
step scaled by sqrt(v) < 1e-19 beside eps = 1e-8), and the setting is
restored when training ends.

Each learn step frees and reallocates a few multi-megabyte gradient and Adam
temporaries. glibc's malloc hands blocks that large back to the kernel on
free (mmap/munmap, heap trimming), so every step then page-faults the memory
in again: about 1,000 minor faults per learn step on the tutorial network,
which doubled the naive agent's step time (benchmarks/RESULTS.md). Raising
glibc's mmap and trim thresholds keeps those blocks in the heap for reuse.
It changes no numbers, only where memory comes from.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
from typing import Iterator

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


def _flushing() -> bool:
    """Whether subnormal floats are flushed to zero now (on this CPU thread)."""
    return bool(torch.tensor(1e-39, dtype=torch.float32).mul(1.0) == 0)


@contextlib.contextmanager
def flushed_denormals() -> Iterator[None]:
    """Flush subnormal floats to zero inside the block (where the CPU supports it); restore the setting after."""
    before = _flushing()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)
