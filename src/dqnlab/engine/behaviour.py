"""Shadow learners: learning from transitions that a behaviour, not the learner, chose.

The tutorial: "If we were really good scientists we would use the same set of
transitions on both agents, and identical starting weights and frozen random
seeds." Each of its agents collects its own data, so "replay helps" mixes a
better learning rule with better data. A run whose `behaviour.actor` is not
"self" separates the two: it never acts. Its seed's behaviour plays first and
every transition is recorded (`stream.RecordingEnvs`); then the run learns
from the recording in its order (`stream.StreamEnvs` stands in for the
environment), from the seed's initial weights and with the seed's replay
draws, exactly as it would from its own actions. Runs of one seed and one
behaviour therefore learn from the same transitions in the same order,
whatever their learning rule; their training scores are the behaviour's, so
they are measured by greedy evaluations (`run.eval_every`).

The behaviours (`config.ACTORS`):

- "random": uniformly random actions, from the seed's "behaviour" draws;
- "handset": the hand-set network (`dqnlab.handset`), epsilon-greedy with
  `behaviour.epsilon`, from the same draws;
- "weights": a saved network (`behaviour.weights`), the same way. The
  engine reads no files: the caller loads it and passes it in (dqnlab's
  commands do, through `experiments.trainrun.behaviour_network`);
- "naive", "replay": the preset's agent of that name, with the preset's
  replay settings and this run's env, network, learner and run settings,
  learning as it acts (`acting_config`). A replay learner shadowing the
  "replay" behaviour of its own configuration is that agent itself, bit for
  bit (tests/test_behaviour.py).

Each behaviour plays from the seed's environment starts, the same as any run
of the seed. The learning behaviours are recorded by the training loop itself
(`training.behaviour_stream`); the fixed ones here (`play_stream`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch

from dqnlab import seeding
from dqnlab.config import AGENTS, BehaviourConfig, Config, preset, with_agent
from dqnlab.engine.envs import EnvSpec, make_member_envs
from dqnlab.engine.learner import epsilon_greedy
from dqnlab.engine.network import QNetwork, StackedQNetwork
from dqnlab.engine.stream import RecordingEnvs, Stream
from dqnlab.errors import DqnlabError
from dqnlab.handset import handset_network
from dqnlab.seeding import HIGH

Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # obs (N, obs_dim), raw draws (N, 2) -> actions (N,)


def acts(config: Config) -> bool:
    """The run chooses its own actions (the tutorial's agents); otherwise it shadows a behaviour."""
    return config.behaviour.actor == "self"


def learns_as_it_acts(config: Config) -> bool:
    """The behaviour is one of the tutorial's agents, learning as it plays."""
    return config.behaviour.actor in AGENTS


def acting_config(config: Config) -> Config:
    """The configuration of a shadow's learning behaviour: the preset's `actor` agent, acting itself.

    Its replay settings are the preset's (with the naive agent's changes for
    "naive"); env, network, learner and run settings are the shadow's.
    """
    actor = config.behaviour.actor
    if actor not in AGENTS:
        raise DqnlabError(f"behaviour.actor {actor!r} is not a learning agent; choose one of: {', '.join(AGENTS)}")
    with_preset_replay = dataclasses.replace(config, replay=preset(config.preset).replay, behaviour=BehaviourConfig())
    return with_agent(with_preset_replay, actor)


def play_stream(configs: list[Config], device: torch.device, network: QNetwork | None = None) -> Stream:
    """The fixed behaviour's `run.samples` transitions for each member's seed: (S, N, ...).

    `network`: the saved network that actor "weights" plays (None for the others).
    """
    base = configs[0]
    seeds = [config.run.seed for config in configs]
    n, samples = len(configs), base.run.samples
    envs = RecordingEnvs(make_member_envs(base.env, seeds, device), n, samples)
    try:
        policy = fixed_policy(base.behaviour, envs.spec, n, device, network)
        draws = seeding.MemberDraws(seeds, "behaviour", 2, device)  # (N, 2) per step: a coin and a random action
        obs = envs.reset(np.ones(n, dtype=np.bool_))  # (N, obs_dim)
        for _ in range(samples):
            step = envs.step(policy(obs, draws.next()))
            _, terminated, truncated = step.outcome()  # (N,) each
            ended = terminated | truncated  # (N,)
            obs = envs.reset(ended) if ended.any() else step.next_obs  # (N, obs_dim)
    finally:
        envs.close()
    return envs.recorded_stream()


def fixed_policy(behaviour: BehaviourConfig, spec: EnvSpec, members: int, device: torch.device,
                 network: QNetwork | None = None) -> Policy:  # fmt: skip
    """The actions of a behaviour that does not learn, for N members at once."""
    if behaviour.actor == "random":
        return lambda obs, raw: raw[:, 1] % spec.n_actions  # (N,)
    if behaviour.actor == "handset":
        network, source = handset_network(), "the hand-set network (CartPole's)"
    elif behaviour.actor == "weights":
        if network is None:
            raise DqnlabError("behaviour.actor weights plays a saved network: load behaviour.weights and pass it in "
                              "(dqnlab.experiments.trainrun.behaviour_network)")  # fmt: skip
        source = f"the network in {behaviour.weights}"
    else:
        raise DqnlabError(f"behaviour.actor {behaviour.actor!r} is not a fixed policy; choose random, handset or weights")
    if (spec.obs_dim, spec.n_actions) != (network.obs_dim, network.n_actions):
        raise DqnlabError(f"behaviour.actor {behaviour.actor}: {source} takes {network.obs_dim} observations and "
                          f"{network.n_actions} actions; {spec.id} has {spec.obs_dim} and {spec.n_actions}")  # fmt: skip
    return _epsilon_greedy_policy(StackedQNetwork([network] * members, device), behaviour.epsilon, spec.n_actions)


def _epsilon_greedy_policy(network: StackedQNetwork, epsilon: float, n_actions: int) -> Policy:
    explore_below = int(epsilon * HIGH)  # raw coin < this: a random action

    @torch.no_grad()
    def act(obs: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        greedy = network(obs.unsqueeze(1)).squeeze(1).argmax(dim=1)  # (N,)
        return epsilon_greedy(greedy, raw, explore_below, n_actions)  # (N,)

    return act
