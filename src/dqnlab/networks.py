"""The Q-network: a stack of fully connected ReLU layers, one Q-value per action.

The tutorial's network is 4 -> 1024 -> 512 -> 2. Hidden units are the
"feature detectors" the tutorial talks about; `activations` exposes them.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


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
