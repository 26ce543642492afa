from __future__ import annotations

import torch
from torch import nn

from dqnlab.networks import build_network, count_parameters


def test_initialisation_is_pytorchs_default_drawn_from_the_generator():
    """A network built after torch.manual_seed(s) with nn.Linear equals ours from Generator(s)."""
    torch.manual_seed(11)
    reference = [nn.Linear(4, 32), nn.Linear(32, 16), nn.Linear(16, 2)]
    ours = build_network(4, 2, (32, 16), torch.Generator().manual_seed(11))
    for ref, layer in zip(reference, ours.layers):
        assert torch.equal(ref.weight, layer.weight)
        assert torch.equal(ref.bias, layer.bias)


def test_building_does_not_touch_the_global_rng():
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    build_network(4, 2, (8,), torch.Generator().manual_seed(1))
    assert torch.equal(before, torch.random.get_rng_state())


def test_tutorial_network_shape():
    network = build_network(4, 2, (1024, 512), torch.Generator().manual_seed(0))
    assert [tuple(layer.weight.shape) for layer in network.layers] == [(1024, 4), (512, 1024), (2, 512)]
    assert count_parameters(network) == 4 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 2 + 2
    assert network(torch.zeros(3, 4)).shape == (3, 2)


def test_activations_are_the_hidden_relu_outputs():
    network = build_network(2, 2, (3,), torch.Generator().manual_seed(0))
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
        network.layers[0].bias.zero_()
    (hidden,) = network.activations(torch.tensor([[2.0, -3.0]]))
    assert hidden.tolist() == [[2.0, 0.0, 0.0]]
