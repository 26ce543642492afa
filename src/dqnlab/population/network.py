"""N Q-networks of one shape with their weights stacked, evaluated as batched matmuls.

Layer l of member k is `weight[l][k]` (out, in) and `bias[l][k]` (1, out), the
same layout as `nn.Linear`, so `member(k)` is an ordinary `QNetwork` and
`stack` takes ordinary ones.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dqnlab.networks import QNetwork


class StackedQNetwork(nn.Module):
    """obs (N, B, obs_dim) -> Q-values (N, B, n_actions): member k's network on row block k."""

    def __init__(self, networks: list[QNetwork]) -> None:
        super().__init__()
        first = networks[0]
        if any(net.hidden != first.hidden or net.obs_dim != first.obs_dim or net.n_actions != first.n_actions for net in networks):
            raise ValueError("stacked networks must all have the same shape")
        self.obs_dim, self.n_actions, self.hidden = first.obs_dim, first.n_actions, first.hidden
        self.weights = nn.ParameterList(
            torch.stack([net.layers[i].weight.detach() for net in networks]).clone()  # (N, out, in)
            for i in range(len(first.layers))
        )
        self.biases = nn.ParameterList(
            torch.stack([net.layers[i].bias.detach() for net in networks]).unsqueeze(1).clone()  # (N, 1, out)
            for i in range(len(first.layers))
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x, last = obs, len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(bias, x, weight.transpose(1, 2))  # (N, B, out)
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
