"""Q-networks: fully connected ReLU layers, one Q-value per action.

The tutorial's network is 4 -> 1024 -> 512 -> 2; its hidden units are the
"feature detectors" the tutorial talks about.

- `QNetwork` is one network, an `nn.Module`: obs (B, obs_dim) -> Q (B, A).
  Weight files, greedy play, the probe and the hand-set network use it.
- `StackedQNetwork` is N networks of one shape, the engine's: obs
  (N, B, obs_dim) -> Q (N, B, A) as batched matmuls. A single run is N = 1.

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

import torch
from torch import nn
from torch.nn import functional as F

ALIGN = 16  # floats: a 64-byte cache line, the work unit of torch's fused CPU Adam and one AVX-512 vector


class QNetwork(nn.Module):
    """obs (B, obs_dim) -> Q-values (B, n_actions), ReLU between layers."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        widths = (obs_dim, *hidden, n_actions)
        # skip_init: no draw from the global RNG here; `init_weights` draws
        # from the run's own generator instead.
        self.layers = nn.ModuleList(
            nn.utils.skip_init(nn.Linear, fan_in, fan_out) for fan_in, fan_out in zip(widths[:-1], widths[1:])
        )
        self.obs_dim, self.n_actions, self.hidden = obs_dim, n_actions, tuple(hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))  # (B, width)
        return self.layers[-1](x)  # (B, n_actions)

    def activations(self, obs: torch.Tensor) -> list[torch.Tensor]:
        """Each hidden layer's post-ReLU output: [(B, hidden[0]), (B, hidden[1]), ...]."""
        outputs, x = [], obs
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))  # (B, width)
            outputs.append(x)
        return outputs


def init_weights(network: QNetwork, generator: torch.Generator) -> None:
    """PyTorch's default `nn.Linear` initialisation, drawn from `generator`.

    Weights: kaiming_uniform with a=sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in));
    biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Layer by layer, weight before
    bias, exactly the draws `nn.Linear.reset_parameters` makes, so a network
    built after `torch.manual_seed(s)` equals one initialised from a generator
    seeded with s (tests/test_networks.py).
    """
    with torch.no_grad():
        for layer in network.layers:
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def build_network(obs_dim: int, n_actions: int, hidden: tuple[int, ...], generator: torch.Generator) -> QNetwork:
    network = QNetwork(obs_dim, n_actions, hidden)
    init_weights(network, generator)
    return network


def count_parameters(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def _padded(count: int) -> int:
    return -(-count // ALIGN) * ALIGN


class StackedQNetwork:
    """N Q-networks of one shape: obs (N, B, obs_dim) -> Q-values (N, B, n_actions).

    Member k's layer l is `weights[l][k]` (out, in) and `biases[l][k]` (1, out),
    `nn.Linear`'s layout, as views into the flat `params` (P,). `views` lays
    any flat buffer of that size out the same way (the kernel's gradients).
    """

    def __init__(self, networks: list[QNetwork], device: torch.device | str = "cpu") -> None:
        first = networks[0]
        if any((net.obs_dim, net.n_actions, net.hidden) != (first.obs_dim, first.n_actions, first.hidden) for net in networks):
            raise ValueError("stacked networks must all have the same shape")
        self.members, self.obs_dim, self.n_actions, self.hidden = len(networks), first.obs_dim, first.n_actions, first.hidden
        self.widths = (first.obs_dim, *first.hidden, first.n_actions)
        size = sum(self.members * (_padded(i * o) + _padded(o)) for i, o in zip(self.widths[:-1], self.widths[1:]))
        self.params = nn.Parameter(torch.zeros(size, device=device))  # (P,): padding stays 0 (its gradient is 0)
        self.weights, self.biases = self.views(self.params.detach())  # what acting and the kernel read
        self.weights_t = [weight.transpose(1, 2) for weight in self.weights]  # (N, in, out): made once, reused
        with torch.no_grad():
            for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
                weight.copy_(torch.stack([net.layers[i].weight for net in networks]))  # (N, out, in)
                bias.copy_(torch.stack([net.layers[i].bias for net in networks]).unsqueeze(1))  # (N, 1, out)

    def views(self, flat: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """`flat` (P,) as each layer's weights [(N, out, in), ...] and biases [(N, 1, out), ...]."""
        n, weights, biases, offset = self.members, [], [], 0
        for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:]):
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
        x, last = obs, len(weights_t) - 1
        for i, (weight_t, bias) in enumerate(zip(weights_t, biases)):
            x = torch.baddbmm(bias, x, weight_t)  # (N, B, out)
            if i < last:
                x = F.relu(x)  # (N, B, out)
        return x  # (N, B, n_actions)

    @torch.no_grad()
    def member(self, k: int) -> QNetwork:
        """Member k as an ordinary Q-network (a copy, on the CPU)."""
        network = QNetwork(self.obs_dim, self.n_actions, self.hidden)
        for layer, weight, bias in zip(network.layers, self.weights, self.biases):
            layer.weight.copy_(weight[k])  # (out, in)
            layer.bias.copy_(bias[k, 0])  # (out,)
        return network
