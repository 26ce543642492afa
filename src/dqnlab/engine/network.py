"""Q-networks: ReLU layers, one Q-value per action; convolutions first for image observations.

The tutorial's network is 4 -> 1024 -> 512 -> 2; its hidden units are the
"feature detectors" the tutorial talks about. For frames (H x W x C, such as
MinAtar's 10 x 10 x C), `network.conv` puts 3x3, stride-1 convolutions
without padding before the fully connected layers: MinAtar's network (Young
& Tian 2019) is one convolution of 16 channels, then 128 units. A
convolution's output is flattened position by position (row, column, then
channel) into the first fully connected layer.

- `QNetwork` is one network, an `nn.Module`: obs (B, obs_dim) -> Q (B, A)
  (a frame comes flattened, as the engine keeps it, or as (B, H, W, C)).
  Weight files, greedy play, the probe and the hand-set network use it.
- `StackedQNetwork` is N networks of one shape, the engine's: obs
  (N, B, obs_dim) -> Q (N, B, A) as batched matmuls. A single run is N = 1.
  A convolution is a batched matmul too: each member's 3x3 patches (im2col,
  `patches`) times its (out, 9 C) kernel, so member k's arithmetic never
  depends on N, as with the fully connected layers.

A stack keeps every parameter of every member in one flat buffer, layer by
layer (the N members' weights, then their biases), each member's block padded
to a multiple of `ALIGN` floats. So every block starts on a 64-byte boundary
and the buffer's length is a multiple of `ALIGN`: elementwise kernels such as
the fused Adam run every element through the same vectorized code, and member
k's arithmetic is the same whatever N is and whoever its companions are
(tests/test_networks.py checks the layout, tests/test_kernel.py and
tests/test_training.py the bit-for-bit result).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from dqnlab.errors import DqnlabError

ALIGN = 16  # floats: a 64-byte cache line, the work unit of torch's fused CPU Adam and one AVX-512 vector
KERNEL = 3  # every convolution is 3x3, stride 1, no padding: MinAtar's


@dataclass(frozen=True)
class Shape:
    """A Q-network's shape: what its weights file must hold and what `StackedQNetwork` stacks.

    `frame` is (H, W, C) for image observations (obs_dim = H * W * C, the
    frame flattened row by row, channels last, as the environment gives it),
    None for vectors; `conv` needs a frame.
    """

    obs_dim: int
    n_actions: int
    hidden: tuple[int, ...]
    conv: tuple[int, ...] = ()
    frame: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.conv and self.frame is None:
            raise DqnlabError(f"network.conv {list(self.conv)} needs image observations (H x W x C frames, e.g. "
                              f"MinAtar's); this environment gives a flat vector of {self.obs_dim} numbers")  # fmt: skip
        if self.frame is not None and self.frame[0] * self.frame[1] * self.frame[2] != self.obs_dim:
            raise ValueError(f"a frame of {self.frame} does not hold {self.obs_dim} observations")
        height, width = self.conv_sizes()[-1][:2]
        if self.conv and min(height, width) < 1:
            raise DqnlabError(f"network.conv {list(self.conv)}: {len(self.conv)} 3x3 convolutions leave nothing of a "
                              f"{self.frame[0]} x {self.frame[1]} frame; use at most {(min(self.frame[:2]) - 1) // 2}")  # fmt: skip

    def conv_sizes(self) -> list[tuple[int, int, int]]:
        """(H, W, C) of each convolution's input, then of the last one's output: len(conv) + 1 entries."""
        if self.frame is None:
            return [(1, 1, self.obs_dim)]
        sizes = [self.frame]
        for channels in self.conv:
            height, width, _ = sizes[-1]
            sizes.append((height - KERNEL + 1, width - KERNEL + 1, channels))
        return sizes

    def layers(self) -> list[tuple[int, int, int]]:
        """(fan_in, fan_out, positions) of every layer, input first: a convolution takes 9 C inputs at each of
        its H' * W' output positions; a fully connected layer is one position."""
        sizes = self.conv_sizes()
        out = [(c_in * KERNEL * KERNEL, c_out, h * w) for (_, _, c_in), (h, w, c_out) in zip(sizes[:-1], sizes[1:])]
        height, width, channels = sizes[-1]
        widths = (height * width * channels, *self.hidden, self.n_actions)
        return out + [(fan_in, fan_out, 1) for fan_in, fan_out in zip(widths[:-1], widths[1:])]


class QNetwork(nn.Module):
    """obs (B, obs_dim) -> Q-values (B, n_actions), ReLU between layers; convolutions first with `conv`."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...], conv: tuple[int, ...] = (),
                 frame: tuple[int, int, int] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.shape = Shape(obs_dim, n_actions, tuple(hidden), tuple(conv), None if frame is None else tuple(frame))
        sizes = self.shape.conv_sizes()
        # The layers' own initialisation draws from the global RNG, whose state is put back as it was:
        # `init_weights` then draws from the run's own generator. (nn.utils.skip_init would skip the draw,
        # but its meta-device route imports sympy, half a second of every command's start.)
        with torch.random.fork_rng(devices=[]):
            convs = [nn.Conv2d(c_in, c_out, KERNEL) for (_, _, c_in), (_, _, c_out) in zip(sizes[:-1], sizes[1:])]
            linears = [nn.Linear(fan_in, fan_out) for fan_in, fan_out, _ in self.shape.layers()[len(conv):]]
        self.layers = nn.ModuleList(convs + linears)
        self.obs_dim, self.n_actions, self.hidden, self.conv = obs_dim, n_actions, tuple(hidden), tuple(conv)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.layers[-1](self.activations(obs)[-1] if len(self.layers) > 1 else self._flat(obs))  # (B, n_actions)

    def activations(self, obs: torch.Tensor) -> list[torch.Tensor]:
        """Each hidden layer's post-ReLU output: [(B, width), ...]; a convolution's as (B, H', W', channels)."""
        outputs, x = [], obs
        if self.conv:
            height, width, channels = self.shape.frame
            x = obs.reshape(-1, height, width, channels).permute(0, 3, 1, 2)  # (B, C, H, W)
            for layer in self.layers[: len(self.conv)]:
                x = F.relu(layer(x))  # (B, channels, H', W')
                outputs.append(x.permute(0, 2, 3, 1))  # (B, H', W', channels)
            x = outputs[-1].reshape(len(x), -1)  # (B, H' * W' * channels): position by position
        else:
            x = self._flat(obs)  # (B, obs_dim)
        for layer in self.layers[len(self.conv) : -1]:
            x = F.relu(layer(x))  # (B, width)
            outputs.append(x)
        return outputs

    def _flat(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.reshape(-1, self.obs_dim) if obs.dim() != 2 else obs  # (B, obs_dim)


@torch.inference_mode()
def greedy_action(network: QNetwork, obs, device: torch.device) -> int:
    """One network's action with the highest Q-value (the first one on a tie, like torch.argmax)."""
    x = torch.as_tensor(obs, dtype=torch.float32, device=device).reshape(1, -1)  # (1, obs_dim)
    return int(network(x).argmax(dim=1).item())


def windows(x: torch.Tensor, height: int, width: int, channels: int) -> torch.Tensor:
    """Each member's 3x3 windows, a view: x (N, R, H * W * C), frames row by row with channels last (its last
    dimension contiguous) -> (N, R, H', W', 3, 3, C), H' = H - 2: one window per output position, its cells in
    (row, column, channel) order. Copying it copies runs of 3 C contiguous floats (a window's row): 2-4x
    faster here than the (channel, row, column) order of `nn.Conv2d`'s kernels, which the stack's kernels
    are permuted to instead (`StackedQNetwork`)."""
    frames = x.view(x.shape[0], x.shape[1], height, width, channels)  # (N, R, H, W, C)
    return frames.unfold(2, KERNEL, 1).unfold(3, KERNEL, 1).permute(0, 1, 2, 3, 5, 6, 4)  # (N, R, H', W', 3, 3, C)


def patches(x: torch.Tensor, height: int, width: int, channels: int) -> torch.Tensor:
    """Each member's 3x3 patches (im2col), a copy: x (N, R, H * W * C) -> (N, R * H' * W', 9 C)."""
    return windows(x, height, width, channels).reshape(x.shape[0], -1, KERNEL * KERNEL * channels)  # (N, R*H'*W', 9C)


def stacked_kernel(weight: torch.Tensor) -> torch.Tensor:
    """A layer's weight as the stack keeps it: (out, in) as it is; a convolution's (out, C, 3, 3) as
    (out, 3 * 3 * C), in the (row, column, channel) order of `windows`."""
    return weight if weight.dim() == 2 else weight.permute(0, 2, 3, 1).reshape(len(weight), -1)


def init_weights(network: QNetwork, generator: torch.Generator) -> None:
    """PyTorch's default `nn.Linear` and `nn.Conv2d` initialisation, drawn from `generator`.

    Weights: kaiming_uniform with a=sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in));
    biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in a convolution's C * 9.
    Layer by layer, weight before bias, exactly the draws their
    `reset_parameters` make, so a network built after `torch.manual_seed(s)`
    equals one initialised from a generator seeded with s (tests/test_networks.py).
    """
    with torch.no_grad():
        for layer in network.layers:
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(layer.weight[0].numel())  # fan_in: in_features, or in_channels * 3 * 3
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def build_network(obs_dim: int, n_actions: int, hidden: tuple[int, ...], generator: torch.Generator,
                  conv: tuple[int, ...] = (), frame: tuple[int, int, int] | None = None) -> QNetwork:  # fmt: skip
    network = QNetwork(obs_dim, n_actions, hidden, conv, frame)
    init_weights(network, generator)
    return network


def count_parameters(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def _padded(count: int) -> int:
    return -(-count // ALIGN) * ALIGN


class StackedQNetwork:
    """N Q-networks of one shape: obs (N, B, obs_dim) -> Q-values (N, B, n_actions).

    Member k's layer l is `weights[l][k]` (out, in) and `biases[l][k]` (1, out),
    `nn.Linear`'s layout (a convolution's kernel as (out, 3 * 3 * C), the
    order of its patches: `stacked_kernel`), as views into the flat `params`
    (P,). `views`
    lays any flat buffer of that size out the same way (the kernel's gradients).
    """

    def __init__(self, networks: list[QNetwork], device: torch.device | str = "cpu") -> None:
        first = networks[0]
        if any(net.shape != first.shape for net in networks):
            raise ValueError("stacked networks must all have the same shape")
        self.shape = first.shape
        self.members, self.obs_dim, self.n_actions, self.hidden = len(networks), first.obs_dim, first.n_actions, first.hidden
        self.conv, self.conv_sizes = first.conv, self.shape.conv_sizes()  # (H, W, C) into each convolution, and out of the last
        self.layers = self.shape.layers()  # (fan_in, fan_out, positions) of each layer
        self.widths = (self.obs_dim, *(fan_out * positions for _, fan_out, positions in self.layers))  # per row: in, then each layer's out
        size = sum(self.members * (_padded(i * o) + _padded(o)) for i, o, _ in self.layers)
        self.params = nn.Parameter(torch.zeros(size, device=device))  # (P,): padding stays 0 (its gradient is 0)
        self.weights, self.biases = self.views(self.params.detach())  # what acting and the kernel read
        self.weights_t = [weight.transpose(1, 2) for weight in self.weights]  # (N, in, out): made once, reused
        with torch.no_grad():
            for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
                weight.copy_(torch.stack([stacked_kernel(net.layers[i].weight) for net in networks]))  # (N, out, in)
                bias.copy_(torch.stack([net.layers[i].bias for net in networks]).unsqueeze(1))  # (N, 1, out)

    def views(self, flat: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """`flat` (P,) as each layer's weights [(N, out, in), ...] and biases [(N, 1, out), ...]."""
        n, weights, biases, offset = self.members, [], [], 0
        for fan_in, fan_out, _ in self.layers:
            for shape, into in (((fan_out, fan_in), weights), ((1, fan_out), biases)):
                stride = _padded(shape[0] * shape[1])  # member k's block starts at offset + k * stride
                block = flat[offset : offset + n * stride].view(n, stride)  # (N, stride)
                into.append(block[:, : shape[0] * shape[1]].view(n, *shape))  # (N, *shape)
                offset += n * stride
        return weights, biases

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values (N, B, A) of obs (N, B, obs_dim); differentiable in `params` when grad is enabled."""
        if torch.is_grad_enabled():
            weights, biases = self.views(self.params)
            weights_t = [weight.transpose(1, 2) for weight in weights]  # (N, in, out)
        else:
            weights_t, biases = self.weights_t, self.biases
        x, last, rows = obs, len(weights_t) - 1, obs.shape[1]
        for i, (weight_t, bias) in enumerate(zip(weights_t, biases)):
            if i < len(self.conv):
                x = patches(x.reshape(self.members, rows, -1), *self.conv_sizes[i])  # (N, B*H'*W', 9C)
                # its output (N, B*H'*W', channels) is (N, B, H'*W'*channels): frames of the next layer
            elif i == len(self.conv) and self.conv:
                x = x.reshape(self.members, rows, -1)  # (N, B, H'*W'*channels): position by position
            x = torch.baddbmm(bias, x, weight_t)  # (N, B, out), or (N, B*H'*W', channels) for a convolution
            if i < last:
                x = F.relu(x)
        return x  # (N, B, n_actions)

    @torch.no_grad()
    def member(self, k: int) -> QNetwork:
        """Member k as an ordinary Q-network (a copy, on the CPU)."""
        network = QNetwork(self.obs_dim, self.n_actions, self.hidden, self.conv, self.shape.frame)
        for layer, weight, bias in zip(network.layers, self.weights, self.biases):
            if layer.weight.dim() == 2:
                layer.weight.copy_(weight[k])  # (out, in)
            else:  # (out, 3 * 3 * C) back to nn.Conv2d's (out, C, 3, 3)
                layer.weight.copy_(weight[k].view(len(weight[k]), KERNEL, KERNEL, -1).permute(0, 3, 1, 2))
            layer.bias.copy_(bias[k, 0])  # (out,)
        return network
