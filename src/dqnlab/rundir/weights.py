"""Reading a Q-network's weights file: tensors only, each one's name, shape and values checked (`networks` builds the network).

A weights file is a `state_dict` written by `torch.save` (dqnlab's
`rundir.writer.save_weights`). It is loaded with `weights_only=True`, so loading it
never runs code, and anything else is refused with one line naming the file
and the problem. torch's own error text is never passed on: it may advise
loading with `weights_only=False`, which would run whatever the file holds.

Weights that are NaN or infinite are refused too: a run whose loss diverged
saves such weights (`engine.training` stops a member after the learn step
whose loss was not finite, and that step's update has already made its
weights NaN), and nothing can be played or probed with them.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from dqnlab.errors import DqnlabError

ZIP_MAGIC = b"PK\x03\x04"
KEY = re.compile(r"layers\.(\d+)\.(weight|bias)")


def read_weights(path: str | Path, obs_dim: int, n_actions: int, hidden: tuple[int, ...] | None = None,
                 conv: tuple[int, ...] | None = None, frame: tuple[int, int, int] | None = None,
                 ) -> tuple[dict[str, torch.Tensor], tuple[int, ...], tuple[int, ...]]:  # fmt: skip
    """A Q-network's state_dict from a weights file, every tensor checked, its hidden widths and its convolutions' channels.

    `hidden` and `conv`: the widths and channels the network must have (a run's config.json); None reads them
    from the file (a convolution's weight is 4-D, (out, in, 3, 3)). `frame`: (H, W, C) of the environment's
    image observations, None for vectors; convolutions need one.
    """
    path = Path(path)
    state = _read_state(path)
    return state, *_check_state(path, state, obs_dim, n_actions, hidden, conv, frame)


def _read_state(path: Path) -> Any:
    """What torch.load finds in the file (tensors and plain containers only), or a one-line DqnlabError."""
    if path.is_dir():
        raise DqnlabError(f"{path} is a directory, not a weights file")
    if not path.is_file():
        raise DqnlabError(f"{path} does not exist: the run has no weights (did it finish?)")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(ZIP_MAGIC))
    except OSError as error:
        raise DqnlabError(f"{path} cannot be read: {error.strerror}") from None
    if not head:
        raise DqnlabError(f"{path} is not a readable weights file: it is empty")
    try:
        with warnings.catch_warnings():  # torch warns on stderr about some pickles it then refuses
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types here; its text is never shown (see the module's docstring)
        raise DqnlabError(f"{path} is not a readable weights file: {_why_unreadable(path, head, error)}") from None


def _why_unreadable(path: Path, head: bytes, error: Exception) -> str:
    if isinstance(error, pickle.UnpicklingError) and "allowed global" in str(error):
        return "it holds objects other than tensors (dqnlab loads weights only, never arbitrary objects)"
    if head != ZIP_MAGIC:
        return "torch.save did not write it"
    if not zipfile.is_zipfile(path):
        return "it is truncated or corrupt"
    with zipfile.ZipFile(path) as archive:
        if not any(name.endswith("/data.pkl") for name in archive.namelist()):
            return "it is a zip archive that torch.save did not write"
    return "it is truncated or corrupt"


def _some(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _check_state(path: Path, state: Any, obs_dim: int, n_actions: int, hidden: tuple[int, ...] | None,
                 conv: tuple[int, ...] | None, frame: tuple[int, int, int] | None) -> tuple[tuple[int, ...], tuple[int, ...]]:  # fmt: skip
    """The hidden widths and convolution channels of the Q-network `state` describes; a one-line DqnlabError otherwise."""
    def refuse(problem: str) -> DqnlabError:
        return DqnlabError(f"{path} does not hold a dqnlab Q-network: {problem}")

    if not isinstance(state, dict):
        raise refuse(f"it holds a {type(state).__name__}, not a state_dict of layers.N.weight and layers.N.bias tensors")
    for key, value in state.items():
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise refuse(f"it holds the entry {key!r}; a Q-network has layers.N.weight and layers.N.bias tensors only")
        if not isinstance(value, torch.Tensor):
            raise refuse(f"{key} is a {type(value).__name__}, not a tensor")
    if hidden is not None:
        count = len(conv or ()) + len(hidden) + 1
    else:
        count = 1 + max((int(KEY.fullmatch(k)[1]) for k in state), default=-1)
    # a file's indices could claim any number of layers: never list more names than it holds, plus one layer
    expected = [f"layers.{i}.{part}" for i in range(min(count, len(state) // 2 + 1)) for part in ("weight", "bias")]
    missing, extra = [k for k in expected if k not in state], [k for k in state if k not in expected]
    if missing or extra or count < 1:
        found = f"lacks {_some(missing)}" if missing else f"holds {_some(extra)} as well" if extra else "is empty"
        last = max(count, 1) - 1
        names = "layers.0.weight, layers.0.bias" + (f" ... layers.{last}.weight, layers.{last}.bias" if last else "")
        raise refuse(f"it {found}; expected {names}")
    weights = [state[f"layers.{i}.weight"] for i in range(count)]
    if conv is None:  # read from the file: the leading 4-D weights are convolutions
        conv = tuple(int(w.shape[0]) for w in _leading(weights, lambda w: w.dim() == 4))
    if conv and frame is None:
        raise DqnlabError(f"{path} holds a network with {len(conv)} convolution(s), but the environment gives flat "
                          f"vectors of {obs_dim} observations, not image frames")  # fmt: skip
    first, last = weights[len(conv)] if len(conv) < count else weights[0], weights[-1]
    if not conv and first.dim() == 2 and last.dim() == 2 and first.shape[1] != obs_dim:  # made for another environment
        raise DqnlabError(f"{path} maps {first.shape[1]} inputs to {last.shape[0]} actions, "
                          f"but the environment has {obs_dim} observations and {n_actions} actions")  # fmt: skip
    if hidden is None:  # each hidden layer's width is its weight's row count
        hidden = tuple(int(w.shape[0]) if w.dim() >= 1 else 0 for w in weights[len(conv) : -1])
        if 0 in hidden:
            raise refuse(f"layers.{len(conv) + hidden.index(0)}.weight has no rows; every hidden layer needs at least one unit")
    shapes, network = _expected_shapes(obs_dim, n_actions, hidden, conv, frame)
    for i, (weight_shape, bias_shape) in enumerate(shapes):
        for part, shape in (("weight", weight_shape), ("bias", bias_shape)):
            key, tensor = f"layers.{i}.{part}", state[f"layers.{i}.{part}"]
            if tuple(tensor.shape) != shape:
                raise DqnlabError(f"{path}: {key} has shape {tuple(tensor.shape)}; {network} needs {shape}")
            if not tensor.is_floating_point() or tensor.layout != torch.strided:
                raise DqnlabError(f"{path}: {key} holds {str(tensor.dtype).removeprefix('torch.')} values; weights must be floating-point")
            if not torch.isfinite(tensor).all():
                raise DqnlabError(f"{path}: {key} holds NaN or infinite values, as a run whose loss diverged leaves them; "
                                  "only finite weights can be played or probed")  # fmt: skip
    return hidden, conv


def _leading(items: list, keep) -> list:
    """The items before the first one `keep` rejects."""
    out = []
    for item in items:
        if not keep(item):
            break
        out.append(item)
    return out


def _expected_shapes(obs_dim: int, n_actions: int, hidden: tuple[int, ...], conv: tuple[int, ...],
                     frame: tuple[int, int, int] | None) -> tuple[list[tuple[tuple[int, ...], tuple[int, ...]]], str]:  # fmt: skip
    """Each layer's (weight shape, bias shape), and the network in words: convolutions 3x3, stride 1, no padding
    (`engine.network`), their output flattened into the first fully connected layer."""
    shapes, inputs = [], obs_dim
    if conv:
        height, width, channels = frame
        for out in conv:
            shapes.append(((out, channels, 3, 3), (out,)))
            height, width, channels = height - 2, width - 2, out
        inputs = height * width * channels
    widths = (inputs, *hidden, n_actions)
    shapes += [((fan_out, fan_in), (fan_out,)) for fan_in, fan_out in zip(widths[:-1], widths[1:])]
    convolutions = f", conv {list(conv)} on {frame[0]} x {frame[1]} x {frame[2]} frames" if conv else ""
    network = (f"a {'-'.join(map(str, (obs_dim, *conv, *hidden, n_actions)))} Q-network ({obs_dim} observations"
               f"{convolutions}, hidden {list(hidden)}, {n_actions} actions)")  # fmt: skip
    return shapes, network
