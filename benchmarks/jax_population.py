"""A population of DQN agents on CartPole in JAX, PureJaxRL-style: the comparison for dqnlab's engine.

It reproduces the algorithm of dqnlab's `quick` preset (the Experience Replay
Tutorial's DQN on a 64x64 network) for N seeds at once, the whole training
run compiled into one XLA program: `jax.jit(jax.vmap(train))` over the
members' PRNG keys, `jax.lax.scan` over the environment steps inside.

- CartPole-v1 is Gymnasium's `CartPoleEnv` in jnp (same constants, explicit
  Euler steps, termination at |x| > 2.4 or |theta| > 12 degrees), used
  unwrapped (no time limit), reward 1 every step, reset to uniform(-0.05, 0.05)
  inside the scan when an episode terminates. Everything runs in float32;
  dqnlab (like Gymnasium) steps the physics in float64, so trajectories
  agree in distribution, not bit for bit.
- Q-network 4 -> 64 -> 64 -> 2, ReLU, PyTorch's `nn.Linear` initialisation.
- Adam written out as PyTorch's (lr 1e-3, betas 0.9/0.999, eps 1e-8 added to
  sqrt(v_hat)); epsilon-greedy with epsilon 0.1; gamma 1; MSE over the batch
  with the tutorial's *full* gradient (the target r + gamma (1 - terminated)
  max_a' Q(s', a') is not stop_gradient'ed).
- Each step stores the transition first, then, once `warmup` transitions are
  stored, learns once on a batch drawn uniformly with replacement from them.
  replay: capacity = steps (never wraps), batch 64, warmup 64;
  naive: capacity 1, batch 1, warmup 1 (it learns from the newest transition).

The random streams are JAX's, not dqnlab's: seed k here is not seed k there.

Run it with the scratch venv of benchmarks/jax_venv.sh, pinned to one core:

    taskset -c 0 /tmp/dqnlab-jax-venv/bin/python benchmarks/jax_population.py --agent replay --members 8 --steps 5000

It prints one JSON line: compile time, the seconds of each timed run of the
compiled program, member-steps per second, and learning figures from the last
20% of the steps (dqnlab's report measures the same window).

Shape comments are one member's (`train` sees one member); vmap adds a
leading N axis, written where the code itself handles N.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Callable, NamedTuple

# XLA honours the first flag; it silently ignores the second token (not an XLA flag: it has no "--").
# One thread comes from the first flag and from the caller's `taskset -c 0`.
SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", choices=("replay", "naive"), default="replay")
    parser.add_argument("--members", type=int, default=1, help="population size N (seeds 0..N-1)")
    parser.add_argument("--steps", type=int, default=5000, help="environment steps T per member")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the compiled program")
    parser.add_argument("--threads", type=int, default=1, help="1: single-threaded XLA; otherwise XLA's default")
    return parser.parse_args()


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.threads == 1:
        os.environ["XLA_FLAGS"] = SINGLE_THREAD_FLAGS  # XLA reads its flags once, when jax is imported

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

# CartPole-v1, as Gymnasium's CartPoleEnv
GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_CART + MASS_POLE
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASS_POLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02  # seconds between state updates
THETA_THRESHOLD = 12 * 2 * np.pi / 360  # radians
X_THRESHOLD = 2.4
OBS_DIM, N_ACTIONS = 4, 2

# dqnlab's `quick` preset
HIDDEN = (64, 64)
LR, BETA1, BETA2, ADAM_EPS = 1e-3, 0.9, 0.999, 1e-8
GAMMA, EPSILON = 1.0, 0.1
FINAL_FRACTION = 0.2  # learning figures come from the last 20% of the steps


class Agent(NamedTuple):
    batch_size: int
    warmup: int  # learning starts once this many transitions are stored
    capacity: int | None  # None: room for every step's transition


AGENTS = {"replay": Agent(batch_size=64, warmup=64, capacity=None), "naive": Agent(batch_size=1, warmup=1, capacity=1)}

Params = tuple[tuple[jax.Array, jax.Array], ...]  # per layer: weight (in, out), bias (out,)


class Adam(NamedTuple):
    step: jax.Array  # () float32, as PyTorch keeps it
    m: Params  # first moments
    v: Params  # second moments


class Transitions(NamedTuple):
    """The replay buffer (C, ...) or a batch (B, ...)."""

    obs: jax.Array  # (C, 4) float32
    action: jax.Array  # (C,) int32
    reward: jax.Array  # (C,) float32
    next_obs: jax.Array  # (C, 4) float32
    terminated: jax.Array  # (C,) bool


class Stats(NamedTuple):
    """One member's running account; every field ()."""

    score: jax.Array  # the running episode's score
    high_score: jax.Array  # the highest score any episode reached, finished or not
    episodes: jax.Array  # episodes finished
    final_failures: jax.Array  # episodes that ended in the final window
    final_score_sum: jax.Array  # their scores, summed


class Carry(NamedTuple):
    key: jax.Array
    params: Params
    adam: Adam
    state: jax.Array  # (4,) the cart's state
    buffer: Transitions
    stats: Stats


# ---------------------------------------------------------------- CartPole


def cartpole_reset(key: jax.Array) -> jax.Array:
    """A start state (4,), uniform in (-0.05, 0.05) as CartPoleEnv.reset draws it."""
    return jax.random.uniform(key, (OBS_DIM,), minval=-0.05, maxval=0.05)  # (4,)


def cartpole_step(state: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One explicit Euler step from state (4,) with action (): next state (4,), terminated () bool."""
    x, x_dot, theta, theta_dot = state
    force = jnp.where(action == 1, FORCE_MAG, -FORCE_MAG)
    costheta, sintheta = jnp.cos(theta), jnp.sin(theta)
    temp = (force + POLEMASS_LENGTH * theta_dot**2 * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * costheta**2 / TOTAL_MASS))
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    x, x_dot = x + TAU * x_dot, x_dot + TAU * xacc
    theta, theta_dot = theta + TAU * theta_dot, theta_dot + TAU * thetaacc
    terminated = (jnp.abs(x) > X_THRESHOLD) | (jnp.abs(theta) > THETA_THRESHOLD)
    return jnp.stack((x, x_dot, theta, theta_dot)), terminated  # (4,), ()


# ---------------------------------------------------------------- network and learning


def init_network(key: jax.Array) -> Params:
    """PyTorch's nn.Linear default: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    widths = (OBS_DIM, *HIDDEN, N_ACTIONS)
    layers = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        key, weight_key, bias_key = jax.random.split(key, 3)
        bound = 1.0 / np.sqrt(fan_in)
        weight = jax.random.uniform(weight_key, (fan_in, fan_out), minval=-bound, maxval=bound)  # (in, out)
        bias = jax.random.uniform(bias_key, (fan_out,), minval=-bound, maxval=bound)  # (out,)
        layers.append((weight, bias))
    return tuple(layers)


def q_values(params: Params, obs: jax.Array) -> jax.Array:
    """Q-values (..., 2) of observations (..., 4), ReLU between layers."""
    x = obs
    for weight, bias in params[:-1]:
        x = jax.nn.relu(x @ weight + bias)  # (..., 64)
    weight, bias = params[-1]
    return x @ weight + bias  # (..., 2)


def td_loss(params: Params, batch: Transitions) -> jax.Array:
    """Mean squared TD error over the batch, the gradient flowing through max Q(s') too (the tutorial's)."""
    q = q_values(params, batch.obs)  # (B, 2)
    q_taken = jnp.take_along_axis(q, batch.action[:, None], axis=1)[:, 0]  # (B,)
    next_value = q_values(params, batch.next_obs).max(axis=1)  # (B,) no stop_gradient, on purpose
    target = batch.reward + GAMMA * (1.0 - batch.terminated) * next_value  # (B,)
    return jnp.mean((q_taken - target) ** 2)


def adam_init(params: Params) -> Adam:
    zeros = jax.tree.map(jnp.zeros_like, params)
    return Adam(step=jnp.zeros((), jnp.float32), m=zeros, v=zeros)


def adam_update(params: Params, grads: Params, adam: Adam) -> tuple[Params, Adam]:
    """One step of torch.optim.Adam with its defaults: bias-corrected, eps added to sqrt(v_hat)."""
    step = adam.step + 1
    m = jax.tree.map(lambda m, g: BETA1 * m + (1 - BETA1) * g, adam.m, grads)
    v = jax.tree.map(lambda v, g: BETA2 * v + (1 - BETA2) * g * g, adam.v, grads)
    step_size = LR / (1 - BETA1**step)
    bias_correction2_sqrt = jnp.sqrt(1 - BETA2**step)
    params = jax.tree.map(
        lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / bias_correction2_sqrt + ADAM_EPS), params, m, v
    )
    return params, Adam(step=step, m=m, v=v)


def act(params: Params, state: jax.Array, key: jax.Array) -> jax.Array:
    """Epsilon-greedy action (): a uniformly random one (it may be the greedy one) with probability EPSILON."""
    coin_key, action_key = jax.random.split(key)
    greedy = jnp.argmax(q_values(params, state))  # first action on a tie, as torch.argmax
    random_action = jax.random.randint(action_key, (), 0, N_ACTIONS)
    return jnp.where(jax.random.uniform(coin_key) < EPSILON, random_action, greedy)


# ---------------------------------------------------------------- training


def make_train(agent: Agent, steps: int) -> Callable[[jax.Array], Stats]:
    """One member's whole training run, from its PRNG key to its final Stats; vmap it over members."""
    capacity = steps if agent.capacity is None else agent.capacity
    final_window_start = steps - int(steps * FINAL_FRACTION)

    def learn(params: Params, adam: Adam, buffer: Transitions, stored: jax.Array, key: jax.Array) -> tuple[Params, Adam]:
        index = jax.random.randint(key, (agent.batch_size,), 0, stored)  # (B,) uniform, with replacement
        batch = jax.tree.map(lambda field: field[index], buffer)  # each (B, ...)
        grads = jax.grad(td_loss)(params, batch)
        return adam_update(params, grads, adam)

    def skip_learning(params: Params, adam: Adam, buffer: Transitions, stored: jax.Array, key: jax.Array) -> tuple[Params, Adam]:
        return params, adam

    def env_step(carry: Carry, t: jax.Array) -> tuple[Carry, None]:
        key, act_key, batch_key, reset_key = jax.random.split(carry.key, 4)
        action = act(carry.params, carry.state, act_key)
        next_state, terminated = cartpole_step(carry.state, action)  # (4,), ()
        reward = jnp.float32(1.0)

        slot = t % capacity  # the replay agent's buffer never wraps; the naive agent's one slot is overwritten
        buffer = Transitions(
            obs=carry.buffer.obs.at[slot].set(carry.state),
            action=carry.buffer.action.at[slot].set(action),
            reward=carry.buffer.reward.at[slot].set(reward),
            next_obs=carry.buffer.next_obs.at[slot].set(next_state),
            terminated=carry.buffer.terminated.at[slot].set(terminated),
        )  # each (C, ...), updated in place
        stored = jnp.minimum(t + 1, capacity)
        params, adam = jax.lax.cond(
            stored >= agent.warmup, learn, skip_learning, carry.params, carry.adam, buffer, stored, batch_key
        )

        stats = carry.stats
        score = stats.score + reward
        in_final_window = terminated & (t >= final_window_start)
        stats = Stats(
            score=jnp.where(terminated, 0.0, score),
            high_score=jnp.maximum(stats.high_score, score),
            episodes=stats.episodes + terminated,
            final_failures=stats.final_failures + in_final_window,
            final_score_sum=stats.final_score_sum + jnp.where(in_final_window, score, 0.0),
        )
        state = jnp.where(terminated, cartpole_reset(reset_key), next_state)  # (4,) a fresh start after a failure
        return Carry(key, params, adam, state, buffer, stats), None

    def train(key: jax.Array) -> Stats:
        key, network_key, reset_key = jax.random.split(key, 3)
        params = init_network(network_key)
        buffer = Transitions(
            obs=jnp.zeros((capacity, OBS_DIM), jnp.float32),
            action=jnp.zeros((capacity,), jnp.int32),
            reward=jnp.zeros((capacity,), jnp.float32),
            next_obs=jnp.zeros((capacity, OBS_DIM), jnp.float32),
            terminated=jnp.zeros((capacity,), jnp.bool_),
        )
        zero = jnp.zeros((), jnp.float32)
        stats = Stats(score=zero, high_score=zero, episodes=jnp.zeros((), jnp.int32),
                      final_failures=jnp.zeros((), jnp.int32), final_score_sum=zero)  # fmt: skip
        carry = Carry(key, params, adam_init(params), cartpole_reset(reset_key), buffer, stats)
        carry, _ = jax.lax.scan(env_step, carry, jnp.arange(steps))
        return carry.stats

    return train


def learning_figures(stats: Stats, steps: int) -> dict[str, float | int]:
    """Whether the members learned: failures and episode scores in the final window, (N,) stats -> numbers."""
    window = int(steps * FINAL_FRACTION)
    failures = np.asarray(stats.final_failures)  # (N,)
    return {
        "final_window_steps": window,
        "final_failures_per_1000_median": float(np.median(failures) * 1000 / window),
        "final_mean_episode_score": float(np.asarray(stats.final_score_sum).sum() / max(failures.sum(), 1)),
        "median_high_score": float(np.median(np.asarray(stats.high_score))),
        "fraction_reached_200": float(np.mean(np.asarray(stats.high_score) >= 200)),
        "final_mean_episode_count": float(np.asarray(stats.episodes).mean()),
    }


def main(args: argparse.Namespace) -> None:
    keys = jax.vmap(jax.random.key)(jnp.arange(args.members))  # (N,) member k's key from seed k
    program = jax.jit(jax.vmap(make_train(AGENTS[args.agent], args.steps)))

    start = time.perf_counter()
    compiled = program.lower(keys).compile()
    compile_seconds = time.perf_counter() - start

    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        stats = jax.block_until_ready(compiled(keys))  # each field (N,)
        seconds.append(time.perf_counter() - start)

    result = {
        "agent": args.agent,
        "members": args.members,
        "steps": args.steps,
        "compile_seconds": round(compile_seconds, 3),
        "seconds": [round(s, 4) for s in seconds],
        "member_steps_per_second": args.members * args.steps / statistics.median(seconds),
        "jax": jax.__version__,
        "threads": args.threads,
        **learning_figures(stats, args.steps),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(ARGS)
