"""CartPole-v1's dynamics for N carts at once, on NumPy arrays or torch tensors.

The same physics as Gymnasium's `CartPoleEnv` (constants, explicit Euler
integration, termination bounds, reset distribution), computed in float64 as
Gymnasium does, with float32 observations, the same operations in the same
order. `step` takes either NumPy arrays (the engine's choice on the CPU) or
torch tensors (on a GPU):

- with NumPy the states are Gymnasium's bit for bit wherever NumPy's sin
  and cos round as Python's `math` does: they did for all of 200,000 angles
  checked with NumPy 2.4 on x86_64 Linux (a NumPy build with its own
  vectorized sin and cos may not; the test below would say so). A NumPy
  operation on a few carts also costs a fraction of a torch operation;
- torch's sin and cos round apart from `math` in the last bit for some
  angles (0.1% of them one at a time, half of them in long vectors), so
  its observations agree within 1e-6.

tests/test_envs.py checks 512 random trajectories against Gymnasium, each way.

Reset states are drawn exactly as `CartPoleEnv.reset(seed=s)` draws them, bit
for bit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_POLE + MASS_CART
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASS_POLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02  # seconds between state updates
THETA_THRESHOLD = 12 * 2 * math.pi / 360  # radians
X_THRESHOLD = 2.4
OBS_DIM, N_ACTIONS = 4, 2


def initial_state(reset_seed: int) -> np.ndarray:
    """The state (4,) float64 that `CartPoleEnv.reset(seed=reset_seed)` starts from."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(reset_seed)))
    return rng.uniform(low=-0.05, high=0.05, size=(4,))  # (4,)


def step(state, action):
    """One Euler step for every cart: (N, 4) float64 state, (N,) integer actions -> next state (N, 4), terminated (N,) bool.

    `state` and `action` are both NumPy arrays or both torch tensors; the result is of the same kind.
    """
    xp = torch if isinstance(state, torch.Tensor) else np
    x, x_dot, theta, theta_dot = state[:, 0], state[:, 1], state[:, 2], state[:, 3]  # each (N,)
    force = FORCE_MAG * (2 * action - 1)  # (N,) +-10 for actions 1 and 0
    costheta, sintheta = xp.cos(theta), xp.sin(theta)  # (N,)
    temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS  # (N,)
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASS_POLE * (costheta * costheta) / TOTAL_MASS)
    )  # (N,)
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS  # (N,)
    next_state = xp.stack(
        (x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc), axis=1
    )  # (N, 4)
    x, theta = next_state[:, 0], next_state[:, 2]  # (N,)
    terminated = (x < -X_THRESHOLD) | (x > X_THRESHOLD) | (theta < -THETA_THRESHOLD) | (theta > THETA_THRESHOLD)  # (N,)
    return next_state, terminated
