"""A Q-network for CartPole whose weights are set by hand: four feature detectors, no training.

The tutorial calls hidden units "feature detectors" and dares its readers to
balance the pole with fewer neurons than they have fingers, weights set by hand.
`handset_network()` takes the dare with four ReLU neurons (4 -> 4 -> 2):

    neuron                 fires when ...                          relu(...)              votes for
    pole falling right     the pole will lean right 0.3 s from now  theta + 0.3 theta_dot  Q(right)
    pole falling left      its mirror image                         -(same)                Q(left)
    cart drifting right    the cart is right of centre and/or       0.1 x + 0.2 x_dot      Q(right)
                           moving right (x + 2 s of x_dot > 0)
    cart drifting left     its mirror image                         -(same)                Q(left)

Each neuron votes, with weight 1, for one action, so Q(right) is "how urgently
we should push right" (in radians of predicted lean) and the greedy action is
push right exactly when

    u = theta + 0.3 theta_dot + 0.1 x + 0.2 x_dot > 0,

because relu(a) - relu(-a) = a: the network is a linear state-feedback law with
a bang-bang (+-10 N) actuator. Where the gains come from:

**The pole (inner loop).** Linearised about upright, CartPole's equations give
(g = 9.8, pole half-length 0.5 m, pole 0.1 kg, cart 1 kg, force F = +-10 N)

    theta_ddot ~ 15.8 theta - 1.46 F        (pushing right tips the pole left)
    x_ddot     ~  0.98 F    - 0.72 theta

`theta + 0.3 theta_dot` is where the pole will be 0.3 s from now; pushing the
cart under that predicted lean drives the pole onto the line theta_dot = -theta / 0.3,
on which the lean decays with a 0.3 s time constant (15 steps of 0.02 s). The
push is strong enough to hold that line anywhere inside the 12-degree limit
(1.46 * 10 = 14.6 rad/s^2 of authority against at most 15.8 * 0.21 = 3.3 of
gravity). Looking only at theta (no theta_dot) cannot work: by the time the
pole leans, it is already falling.

**The cart (outer loop).** The cart terms are positive, which looks backwards:
the cart drifting right makes the network push *right*. But a cart cannot be
moved left directly without dropping the pole; the pole must first lean left,
and the way to make it lean left is to push the cart right under it. Formally,
while the inner loop holds u ~ 0 the pole leans at theta ~ -(0.1 x + 0.2 x_dot)
and a pole held at a lean theta drags the cart with x_ddot ~ g theta, so

    x_ddot + g 0.2 x_dot + g 0.1 x = 0:

a damped spring pulling the cart to the centre with angular frequency
sqrt(9.8 * 0.1) ~ 1 rad/s (a period of ~6 s, much slower than the 0.3 s pole
loop, as it must be) and damping ratio 9.8 * 0.2 / (2 * 1) ~ 1 (critically
damped: no overshoot towards the other edge). Without the cart detectors the
pole stays up but the cart wanders off the track: the two pole detectors alone
pass the 500-step time limit, yet on unwrapped CartPole most episodes end
with the cart off the edge after a few hundred to a few thousand steps. The
ratio 0.2 / 0.1 makes the cart detectors predictive too: they fire on where
the cart will be 2 s from now. The lean the cart loop asks for stays small:
started at rest anywhere up to x = 2.2, the cart comes back to the centre with
the pole never leaning more than 0.18 rad. (A cart already moving at 1 m/s with
the pole upright is beyond it: stopping it would need more lean than the
12 degrees allow.)

One more condition: a single push must move u the way it is meant to. A push
right changes theta_dot by -14.6 * 0.02 and x_dot by +0.98 * 10 * 0.02 per
step, so u changes by 0.02 * (-0.3 * 14.6 + 0.2 * 9.8) < 0; with a cart damping
above 0.3 * 14.6 / 9.8 = 0.45 the push would feed itself and the pole would fall.

These numbers came from the reasoning above, checked by hand on a few
variants (nothing was fitted): the controller still balances with the pole
look-ahead anywhere in 0.225..0.6 s, the cart gain in 0.05..0.2 and the cart
damping in 0.1..0.3, and fails where the last condition says it should (a
look-ahead of 0.15 s, or a damping of 0.4). On play's seeded starts the pole
never leans more than the ~0.05 rad of its starting states, and the cart
settles into a small chattering orbit within ~0.15 m of the centre
(tests/test_handset.py checks 100 episodes of 10,000 steps).

Ties (u = 0 exactly: every neuron silent, both Q-values 0) go to action 0,
push left, as argmax does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dqnlab.config import Config, resolve
from dqnlab.engine.network import QNetwork

OBS_NAMES = ("x", "x_dot", "theta", "theta_dot")  # CartPole-v1's observation, in order
ACTIONS = ("left", "right")  # action 0 pushes the cart left, 1 pushes it right

POLE_LOOKAHEAD = 0.3  # s: the pole detectors look at theta 0.3 s ahead
CART_GAIN = 0.1  # rad of demanded lean per m off centre: ~1 rad/s cart spring
CART_DAMPING = 0.2  # rad per m/s of cart velocity: damping ratio ~1


@dataclass(frozen=True)
class Neuron:
    """One hidden ReLU unit: relu(weights . obs + bias), and its votes for Q(left), Q(right)."""

    name: str
    feature: str  # what it detects, in words
    weights: tuple[float, float, float, float]  # on x, x_dot, theta, theta_dot
    bias: float
    votes: tuple[float, float]  # output weights to Q(left), Q(right)

    def activation(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (B, 4) -> this neuron's activation (B,)."""
        return torch.relu(obs @ torch.tensor(self.weights, dtype=obs.dtype) + self.bias)  # (B,)


NEURONS: tuple[Neuron, ...] = (
    # Fires when theta + 0.3 theta_dot > 0: leaning right, or swinging right fast enough
    # to lean right 0.3 s from now. Push right, under the pole, to catch it.
    Neuron(
        "pole falling right",
        "the pole leans or swings right (theta + 0.3 s of theta_dot > 0)",
        (0.0, 0.0, 1.0, POLE_LOOKAHEAD),
        0.0,
        (0.0, 1.0),
    ),
    # The mirror image: the pole leans or swings left. Push left.
    Neuron(
        "pole falling left",
        "the pole leans or swings left (theta + 0.3 s of theta_dot < 0)",
        (0.0, 0.0, -1.0, -POLE_LOOKAHEAD),
        0.0,
        (1.0, 0.0),
    ),
    # Fires when the cart is right of centre or heading right (x + 2 s of x_dot > 0).
    # Votes right: a push right tips the pole left, and a left-leaning pole
    # carries the cart back left (see the module docstring).
    Neuron(
        "cart drifting right",
        "the cart is right of centre or heading right (x + 2 s of x_dot > 0)",
        (CART_GAIN, CART_DAMPING, 0.0, 0.0),
        0.0,
        (0.0, 1.0),
    ),
    # The mirror image: the cart is left of centre or heading left. Votes left.
    Neuron(
        "cart drifting left",
        "the cart is left of centre or heading left (x + 2 s of x_dot < 0)",
        (-CART_GAIN, -CART_DAMPING, 0.0, 0.0),
        0.0,
        (1.0, 0.0),
    ),
)


def handset_network(neurons: tuple[Neuron, ...] = NEURONS) -> QNetwork:
    """The 4 -> len(neurons) -> 2 QNetwork with every weight and bias set from `neurons`."""
    network = QNetwork(len(OBS_NAMES), len(ACTIONS), (len(neurons),))
    hidden, output = network.layers
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor([n.weights for n in neurons]))  # (H, 4)
        hidden.bias.copy_(torch.tensor([n.bias for n in neurons]))  # (H,)
        output.weight.copy_(torch.tensor([n.votes for n in neurons]).T)  # (2, H)
        output.bias.zero_()  # (2,)
    return network


def control_signal(obs: torch.Tensor) -> torch.Tensor:
    """obs (B, 4) -> u (B,): Q(right) - Q(left) of the hand-set network, written out as the linear law."""
    x, x_dot, theta, theta_dot = obs.unbind(-1)  # (B,) each
    return theta + POLE_LOOKAHEAD * theta_dot + CART_GAIN * x + CART_DAMPING * x_dot  # (B,)


HANDSET_STATUS = "handset"  # result.json's status for a network nobody trained


def handset_config() -> Config:
    """The tutorial's configuration with the hand-set network's one hidden layer of len(NEURONS) units."""
    return resolve("tutorial", "replay", overrides=[f"network.hidden=[{len(NEURONS)}]"])
