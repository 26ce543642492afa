"""CartPole-v1's dynamics for N carts at once, on NumPy arrays or torch tensors.

The same physics as Gymnasium's `CartPoleEnv` (constants, explicit Euler
integration, termination bounds, reset distribution), computed in float64 as
Gymnasium does, with float32 observations, the same operations in the same
order. `step` takes either NumPy arrays (the engine's choice on the CPU) or
torch tensors (on a GPU):

- with NumPy arrays the sines and cosines are `math`'s, as in
  `CartPoleEnv.step`, and the rest is float64 arithmetic, which rounds
  the same in NumPy as in Python, so the states are Gymnasium's bit for bit
  on any machine. Below `SCALAR_BELOW` carts each cart steps in Python
  floats (about 2 us a step for one cart, where NumPy's array operations
  take 15 us for one or a few); from there, as arrays with `math` mapped
  over the angles (29 us for 128 carts, where one cart at a time takes
  84 us). NumPy's own sin and cos may round apart from `math` on some
  builds, so the engine does not use them;
- torch's sin and cos round apart from `math` in the last bit for some
  angles (0.1% of them one at a time, half of them in long vectors), so
  its observations agree within 1e-6.

tests/test_envs.py checks random trajectories against Gymnasium on each path.

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
SCALAR_BELOW = 24  # carts: fewer step fastest one by one in Python floats, more as NumPy arrays (the same bits)


def initial_state(reset_seed: int) -> np.ndarray:
    """The state (4,) float64 that `CartPoleEnv.reset(seed=reset_seed)` starts from."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(reset_seed)))
    return rng.uniform(low=-0.05, high=0.05, size=(4,))  # (4,)


def step(state, action):
    """One Euler step for every cart: (N, 4) float64 state, (N,) integer actions -> next state (N, 4), terminated (N,) bool.

    `state` and `action` are both NumPy arrays or both torch tensors; the result is of the same kind.
    """
    if isinstance(state, torch.Tensor):  # every cart at once, each variable a column (N,)
        moved = _euler(*state.unbind(1), action, torch.cos, torch.sin)  # 4 x (N,)
        return torch.stack(moved, dim=1), _out_of_bounds(moved[0], moved[2])  # (N, 4), (N,)
    return step_arrays(state, action) if len(state) >= SCALAR_BELOW else step_floats(state, action)


def step_floats(state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`step` one cart at a time in Python floats: the fastest way for a few carts."""
    moved = [_euler(*cart, push) for cart, push in zip(state.tolist(), action.tolist())]  # N x 4 floats
    terminated = [_out_of_bounds(cart[0], cart[2]) for cart in moved]  # N x bool
    return np.array(moved, dtype=np.float64).reshape(-1, OBS_DIM), np.array(terminated, dtype=np.bool_)  # (N, 4), (N,)


def _cos(angles: np.ndarray) -> np.ndarray:
    return np.array(list(map(math.cos, angles.tolist())))  # (N,) float64, math's roundings


def _sin(angles: np.ndarray) -> np.ndarray:
    return np.array(list(map(math.sin, angles.tolist())))  # (N,) float64


def step_arrays(state: np.ndarray, action: np.ndarray, cos=_cos, sin=_sin) -> tuple[np.ndarray, np.ndarray]:
    """`step` on NumPy arrays, each variable a column (N,), with `math`'s cos and sin unless others are given."""
    moved = _euler(*state.T, action, cos, sin)  # 4 x (N,)
    return np.stack(moved, axis=1), _out_of_bounds(moved[0], moved[2])  # (N, 4), (N,)


def _euler(x, x_dot, theta, theta_dot, action, cos=math.cos, sin=math.sin):
    """The next (x, x_dot, theta, theta_dot): `CartPoleEnv.step`'s arithmetic, on floats or on (N,) arrays or tensors."""
    force = FORCE_MAG * (2 * action - 1)  # +-10 for actions 1 and 0
    costheta, sintheta = cos(theta), sin(theta)
    temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * (costheta * costheta) / TOTAL_MASS))
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    return x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc


def _out_of_bounds(x, theta):
    """Terminated: the cart or the pole beyond its bound (floats give a bool, (N,) arrays or tensors (N,) bools)."""
    return (x < -X_THRESHOLD) | (x > X_THRESHOLD) | (theta < -THETA_THRESHOLD) | (theta > THETA_THRESHOLD)
