"""What a configuration is: its frozen dataclasses, the named presets, the agents, and the allowed values.

`validate` names the first value outside its range; `config_to_dict` and
`config_to_json` are what config.json holds (`resolving.config_from_dict`
reads it back).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from dqnlab.errors import DqnlabError

TD_GRADIENTS = ("full", "semi")
LOSSES = ("mse", "huber")
OPTIMIZERS = ("adam", "rmsprop")
TARGET_UPDATES = ("none", "hard", "polyak")
AGENTS = ("naive", "replay")
# Who acts. "self": the run's own epsilon-greedy learner (every agent of the tutorial). The others make the
# run a shadow learner that never acts: it learns from the transitions this behaviour produces for its seed
# (engine/behaviour.py): "random" actions, the "handset" network, a saved network's "weights", or the preset's
# "naive" or "replay" agent.
ACTORS = ("self", "random", "handset", "weights", *AGENTS)
# The training loop keeps replay.updates_per_step as a fraction with a denominator of at most a million
# (engine/training.py), so a smaller ratio would round to no learning at all.
MIN_UPDATES_PER_STEP = 1e-6


@dataclass(frozen=True)
class EnvConfig:
    # Any Gymnasium id with a Discrete action space and a flat Box observation or binary frames (MinAtar's).
    id: str = "CartPole-v1"
    # None: no time limit. The tutorial plays `gym.make("CartPole-v1").unwrapped`,
    # so an episode only ends when the pole falls or the cart leaves the track.
    max_episode_steps: int | None = None
    # Target returns whose first reaching every run reports (config/profiles.py). None: the
    # environment's profile's (CartPole: 200, the tutorial's "passable", and 500; Acrobot -100,
    # MountainCar -110, LunarLander 200: Gymnasium's reward thresholds; MinAtar: none published).
    targets: tuple[float, ...] | None = None


@dataclass(frozen=True)
class NetworkConfig:
    # 1024x512 ReLU: the tutorial's network (4 -> 1024 -> 512 -> 2 on CartPole).
    hidden: tuple[int, ...] = (1024, 512)
    # Channels of 3x3, stride-1 convolutions (no padding, ReLU) before the hidden layers, for
    # image observations (H x W x C frames such as MinAtar's 10x10xC). Empty: no convolution.
    # MinAtar's network (Young & Tian 2019) is conv [16], then hidden [128].
    conv: tuple[int, ...] = ()


@dataclass(frozen=True)
class LearnerConfig:
    lr: float = 1e-4  # Adam's learning rate, as in the tutorial
    gamma: float = 1.0  # the tutorial never discounts: target = r + max Q(s')
    epsilon: float = 0.1  # constant: a uniformly random action 10% of the time
    # "full": gradients flow through max Q(s') as in the tutorial's code (it
    # never detaches the target). "semi": the target is a constant, as in
    # standard DQN (Mnih et al. 2015). See "Where the tutorial differs from standard DQN" (docs/configuration.md).
    td_gradient: str = "full"
    loss: str = "mse"  # "mse" as in the tutorial; "huber" as in Mnih et al. 2015
    # None: epsilon stays constant, as in the tutorial. A number: epsilon falls
    # linearly from `epsilon` to this over the first `epsilon_decay_samples`
    # samples, then stays there (standard DQN anneals it).
    epsilon_final: float | None = None
    epsilon_decay_samples: int = 10_000  # samples over which epsilon falls to epsilon_final
    # The network the bootstrap reads Q(s') from. "none": the online network
    # itself (the tutorial). "hard": a copy, refreshed every `target_every` learn
    # steps (Mnih et al. 2015). "polyak": a copy moved towards the online
    # network by `target_tau` after every learn step (Lillicrap et al. 2016).
    target_update: str = "none"
    target_every: int = 500  # learn steps between hard copies
    target_tau: float = 0.005  # Polyak's tau: target <- tau online + (1 - tau) target after every learn step
    # Double DQN (van Hasselt et al. 2016): the online network picks a', the
    # target network evaluates it (without one, the online network under no-grad,
    # which is then the plain max).
    double: bool = False
    # n-step returns: r_t + gamma r_t+1 + ... + gamma^(n-1) r_t+n-1 + gamma^n max Q(s_t+n),
    # cut short at an episode's end and at the newest stored transition. 1: the tutorial's.
    n_step: int = 1
    # "adam": PyTorch's Adam with its defaults, as the tutorial uses. "rmsprop": centered RMSProp
    # (Graves 2013), the optimizer of DQN (Mnih et al. 2015) and MinAtar (Young & Tian 2019), as
    # torch.optim.RMSprop(centered=True, alpha=rmsprop_alpha, eps=rmsprop_eps) computes it.
    optimizer: str = "adam"
    rmsprop_alpha: float = 0.95  # the squared gradient's (and gradient's) moving-average factor; MinAtar's 0.95
    rmsprop_eps: float = 0.01  # added to the root of the centered second moment; MinAtar's 0.01


@dataclass(frozen=True)
class ReplayConfig:
    # None: every transition of the sample budget is kept (the tutorial's list
    # never evicts). An int bounds the ring; the oldest transition is replaced.
    capacity: int | None = None
    batch_size: int = 64  # transitions per learn step
    warmup: int = 64  # learning starts once the memory holds this many
    with_replacement: bool = True  # the tutorial's `random.choices`
    updates_per_step: float = 1.0  # learn steps per environment step; 0.25 = every 4th
    # Proportional prioritized replay (Schaul et al. 2016): transition i is drawn
    # with probability p_i^alpha / sum p^alpha, p_i = |TD error| + epsilon, and its
    # loss weighted by (size P(i))^-beta / the batch's largest such weight, beta
    # rising linearly from `priority_beta` to 1 at the end of the budget. Their
    # Atari values: alpha 0.6, beta 0.4.
    prioritized: bool = False
    priority_alpha: float = 0.6  # how strongly priorities shape the draws (0: uniform)
    priority_beta: float = 0.4  # importance-weight exponent at the start, rising linearly to 1 at the end of the budget
    priority_epsilon: float = 1e-6  # added to |TD error| so every transition stays drawable
    # Combined experience replay (Zhang & Sutton 2017): every batch's last
    # transition is the newest one stored, the other B - 1 drawn as usual.
    combined: bool = False


@dataclass(frozen=True)
class RunConfig:
    seed: int = 0  # one integer for weights, resets, exploration and replay draws
    samples: int = 50_000  # environment transitions; the tutorial compares at 50,000
    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"
    checkpoint_every: int | None = None  # save weights every K samples; None: never
    # Greedy evaluation every K samples (no exploration, no learning), written to
    # evaluations.csv; its time is kept off the training clock. None: never.
    eval_every: int | None = None
    eval_episodes: int = 10  # the same seeded starting states at every evaluation
    eval_max_steps: int = 1_000  # cap per evaluation episode (unwrapped CartPole may never end)


@dataclass(frozen=True)
class BehaviourConfig:
    # "self": the run acts and learns from what it did, as in the tutorial. Any
    # other actor makes the run a shadow learner (engine/behaviour.py): the
    # seed's behaviour plays, and the run learns from its transitions in their
    # order, from the seed's initial weights; runs of one seed and one
    # behaviour then learn from the same transitions, whatever their learning
    # rule. "random": uniform actions. "handset": the hand-set network
    # (dqnlab.handset), epsilon-greedy. "weights": the network saved in
    # `weights`, epsilon-greedy. "naive" / "replay": the preset's agent
    # of that name (the preset's replay settings) with this run's env, network,
    # learner and run settings, learning as it acts.
    actor: str = "self"
    # The hand-set or saved network's exploration: a uniformly random action
    # this often, so that the stream holds more than that network's choices.
    epsilon: float = 0.1
    # For actor "weights": a weights file, e.g. a run's weights.pt or one of its checkpoints.
    weights: str | None = None


@dataclass(frozen=True)
class Config:
    preset: str = "tutorial"
    agent: str = "replay"
    env: EnvConfig = field(default_factory=EnvConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    run: RunConfig = field(default_factory=RunConfig)
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)


SECTIONS: dict[str, type] = {
    "env": EnvConfig,
    "network": NetworkConfig,
    "learner": LearnerConfig,
    "replay": ReplayConfig,
    "run": RunConfig,
    "behaviour": BehaviourConfig,
}

PRESETS: dict[str, tuple[str, Config]] = {
    "tutorial": (
        "the tutorial's code exactly: unwrapped CartPole-v1, 1024x512 ReLU, Adam 1e-4, "
        "MSE, epsilon 0.1, gamma 1, gradient through the target, batch 64 with replacement",
        Config(),
    ),
    "quick": (
        "the tutorial's algorithm on a 64x64 network with lr 1e-3 and 20,000 samples: "
        "small enough for 20 paired seeds of both agents in minutes on 2 cores (docs: Comparing agents, how it was chosen)",
        Config(
            preset="quick",
            network=NetworkConfig(hidden=(64, 64)),
            learner=LearnerConfig(lr=1e-3),
            run=RunConfig(samples=20_000),
        ),
    ),
    "standard": (
        "standard DQN (Mnih et al. 2015) on the tutorial's network: semi-gradient, Huber, gamma 0.99, "
        "a target network copied every 500 learn steps, epsilon 1 -> 0.05 over the first 10,000 samples, "
        "500-step time limit (bootstrapped on truncation), 50,000-transition ring",
        Config(
            preset="standard",
            env=EnvConfig(max_episode_steps=500),
            learner=LearnerConfig(
                gamma=0.99, td_gradient="semi", loss="huber", target_update="hard", target_every=500,
                epsilon=1.0, epsilon_final=0.05, epsilon_decay_samples=10_000,
            ),
            replay=ReplayConfig(capacity=50_000),
        ),
    ),
    "minatar": (
        "DQN of the MinAtar paper (Young & Tian 2019) on MinAtar/Breakout-v0: conv 16 (3x3) then 128 units, "
        "centered RMSProp 2.5e-4, Huber, gamma 0.99, semi-gradient, a target network copied every 1,000 learn "
        "steps, epsilon 1 -> 0.1 over 100,000 samples, batches of 32 drawn without replacement from a "
        "100,000-transition ring after 5,000, 5 million samples (pip install 'dqnlab[minatar]')",
        Config(
            preset="minatar",
            # v0: the full set of 6 actions, which the paper's results use (MinAtar's README)
            env=EnvConfig(id="MinAtar/Breakout-v0"),
            network=NetworkConfig(hidden=(128,), conv=(16,)),
            learner=LearnerConfig(
                lr=2.5e-4, gamma=0.99, td_gradient="semi", loss="huber", target_update="hard", target_every=1_000,
                epsilon=1.0, epsilon_final=0.1, epsilon_decay_samples=100_000, optimizer="rmsprop",
                rmsprop_alpha=0.95, rmsprop_eps=0.01,
            ),
            replay=ReplayConfig(capacity=100_000, batch_size=32, warmup=5_000, with_replacement=False),
            run=RunConfig(samples=5_000_000),
        ),
    ),
}


def preset(name: str) -> Config:
    """The named preset's configuration (with the `replay` agent)."""
    if name not in PRESETS:
        raise DqnlabError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name][1], preset=name)


def with_agent(config: Config, agent: str) -> Config:
    """Apply an agent to a configuration.

    `replay` keeps the replay section as it is. `naive` is the tutorial's
    learn-on-arrival agent expressed as replay settings: a memory of one
    transition, batches of one, learning from the first step. Because each step
    stores before it learns, the only transition it can draw is the one that
    just arrived (tests/test_learner.py proves the equivalence).
    """
    if agent not in AGENTS:
        raise DqnlabError(f"unknown agent {agent!r}; choose one of: {', '.join(AGENTS)}")
    replay = config.replay
    if agent == "naive":
        replay = dataclasses.replace(replay, capacity=1, batch_size=1, warmup=1, updates_per_step=1.0)
    return dataclasses.replace(config, agent=agent, replay=replay)


# ---------------------------------------------------------------- validation


def validate(config: Config) -> None:
    """Raise DqnlabError naming the first value outside its allowed range."""
    env, net, learner, replay, run = config.env, config.network, config.learner, config.replay, config.run
    behaviour = config.behaviour
    bounded = replay.capacity is not None
    distinct = not replay.with_replacement  # a batch then needs batch_size distinct transitions
    checks = [  # (key, allowed, rule)
        ("env.id", bool(env.id), "must not be empty"),
        ("env.max_episode_steps", env.max_episode_steps is None or env.max_episode_steps >= 1, "must be >= 1 (or none)"),
        ("network.hidden", len(net.hidden) >= 1 and min(net.hidden) >= 1, "must be one or more widths >= 1"),
        ("network.conv", min(net.conv, default=1) >= 1, "must be channel counts >= 1 (or [] for no convolution)"),
        ("env.targets", env.targets is None or all(math.isfinite(t) for t in env.targets), "must be finite returns (or none: the profile's)"),
        ("learner.lr", learner.lr > 0, "must be > 0"),
        ("learner.lr", math.isfinite(learner.lr), "must be finite"),
        ("learner.gamma", 0 <= learner.gamma <= 1, "must be in [0, 1]"),
        ("learner.epsilon", 0 <= learner.epsilon <= 1, "must be in [0, 1]"),
        ("learner.td_gradient", learner.td_gradient in TD_GRADIENTS, f"must be one of {', '.join(TD_GRADIENTS)}"),
        ("learner.loss", learner.loss in LOSSES, f"must be one of {', '.join(LOSSES)}"),
        ("learner.epsilon_final", learner.epsilon_final is None or 0 <= learner.epsilon_final <= 1, "must be in [0, 1] (or none: constant epsilon)"),
        ("learner.epsilon_decay_samples", learner.epsilon_decay_samples >= 1, "must be >= 1"),
        ("learner.target_update", learner.target_update in TARGET_UPDATES, f"must be one of {', '.join(TARGET_UPDATES)}"),
        ("learner.target_every", learner.target_every >= 1, "must be >= 1"),
        ("learner.target_tau", 0 < learner.target_tau <= 1, "must be in (0, 1]"),
        ("learner.td_gradient", learner.target_update == "none" or learner.td_gradient == "semi",
         "must be semi with a target network (no gradient reaches the online network through the target's Q(s'))"),
        ("learner.td_gradient", not learner.double or learner.td_gradient == "semi",
         "must be semi with learner.double (double DQN evaluates a' without gradient)"),
        ("learner.n_step", learner.n_step >= 1, "must be >= 1"),
        ("learner.optimizer", learner.optimizer in OPTIMIZERS, f"must be one of {', '.join(OPTIMIZERS)}"),
        ("learner.rmsprop_alpha", 0 <= learner.rmsprop_alpha < 1, "must be in [0, 1)"),
        ("learner.rmsprop_eps", learner.rmsprop_eps > 0 and math.isfinite(learner.rmsprop_eps), "must be > 0 and finite"),
        ("replay.priority_alpha", 0 <= replay.priority_alpha, "must be >= 0 (0: uniform)"),
        ("replay.priority_alpha", math.isfinite(replay.priority_alpha), "must be finite"),
        ("replay.priority_beta", 0 <= replay.priority_beta <= 1, "must be in [0, 1]"),
        ("replay.priority_epsilon", replay.priority_epsilon > 0, "must be > 0 (every stored transition must stay drawable)"),
        ("replay.priority_epsilon", math.isfinite(replay.priority_epsilon), "must be finite"),
        ("replay.with_replacement", not replay.prioritized or replay.with_replacement,
         "must be true with replay.prioritized (prioritized draws are independent, with replacement)"),
        ("replay.capacity", replay.capacity is None or replay.capacity >= 1, "must be >= 1 (or none: unbounded)"),
        ("replay.batch_size", replay.batch_size >= 1, "must be >= 1"),
        ("replay.warmup", replay.warmup >= 1, "must be >= 1 (nothing can be drawn from an empty memory)"),
        ("replay.updates_per_step", replay.updates_per_step > 0, "must be > 0"),
        ("replay.updates_per_step", math.isfinite(replay.updates_per_step), "must be finite"),
        ("replay.updates_per_step", replay.updates_per_step >= MIN_UPDATES_PER_STEP,
         "must be >= 1e-6 (the training loop keeps it to the nearest millionth, so a smaller ratio never learns)"),
        ("replay.capacity", not bounded or replay.capacity >= replay.batch_size, "must be >= replay.batch_size"),
        ("replay.warmup", not distinct or replay.warmup >= replay.batch_size, "must be >= replay.batch_size when sampling without replacement"),
        ("run.seed", 0 <= run.seed < 2**63, "must be in [0, 2**63)"),
        ("run.samples", run.samples >= 1, "must be >= 1"),
        ("run.checkpoint_every", run.checkpoint_every is None or run.checkpoint_every >= 1, "must be >= 1 (or none)"),
        ("run.eval_every", run.eval_every is None or run.eval_every >= 1, "must be >= 1 (or none)"),
        ("run.eval_episodes", run.eval_episodes >= 1, "must be >= 1"),
        ("run.eval_max_steps", run.eval_max_steps >= 1, "must be >= 1"),
        ("replay.warmup", not bounded or replay.warmup <= replay.capacity, "must be <= replay.capacity, or learning never starts"),
        ("replay.capacity", not bounded or replay.capacity >= learner.n_step,
         "must be >= learner.n_step (an n-step return needs n stored transitions; the naive agent's memory holds one)"),
        ("behaviour.actor", behaviour.actor in ACTORS, f"must be one of {', '.join(ACTORS)}"),
        ("behaviour.epsilon", 0 <= behaviour.epsilon <= 1, "must be in [0, 1]"),
        ("behaviour.weights", behaviour.actor != "weights" or bool(behaviour.weights),
         "must name a weights file (e.g. a run's weights.pt) when behaviour.actor is weights"),
        ("behaviour.weights", behaviour.actor == "weights" or behaviour.weights is None,
         "is read only when behaviour.actor is weights (leave it out)"),
        ("run.eval_every", behaviour.actor == "self" or run.eval_every is not None,
         "must be set when behaviour.actor is not self (a learner that does not act is measured by greedy evaluations)"),
        ("run.device", run.device == "cpu" or re.fullmatch(r"cuda(:\d+)?", run.device) is not None, "must be cpu, cuda or cuda:N"),
    ]
    for key, allowed, rule in checks:
        if not allowed:
            section, _, name = key.partition(".")
            raise DqnlabError(f"{key} {rule}; got {getattr(getattr(config, section), name)!r}")


# ---------------------------------------------------------------- JSON


def config_to_dict(config: Config) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    data["network"]["hidden"] = list(config.network.hidden)
    data["network"]["conv"] = list(config.network.conv)
    data["env"]["targets"] = None if config.env.targets is None else list(config.env.targets)
    return data


def config_to_json(config: Config) -> str:
    return json.dumps(config_to_dict(config), indent=2) + "\n"
