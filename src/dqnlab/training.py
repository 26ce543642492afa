"""The training loop: one agent, one seed, a budget of environment samples.

Each environment step, as in the tutorial's replay code:

    action = learner.act(obs)
    next_obs, reward, terminated, truncated = env.step(action)
    buffer.add(obs, action, reward, next_obs, terminated, truncated)   # store first,
    learner.learn(buffer.sample(batch_size))                           # then learn

so the newest transition can be drawn in its own step's batch. Learning starts
once the buffer holds `replay.warmup` transitions. The loop stops after exactly
`run.samples` transitions; an episode still running then is not finished and
is not reported.
"""

from __future__ import annotations

import math
import statistics
import time
from fractions import Fraction
from dataclasses import dataclass, field
from typing import Callable

import torch

from dqnlab import runtime, seeding
from dqnlab.config import Config
from dqnlab.envs import EnvSpec, make_env
from dqnlab.learner import Learner
from dqnlab.networks import QNetwork, build_network
from dqnlab.play import PlayEpisode, play
from dqnlab.replay import ReplayBuffer


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode, as written to episodes.csv."""

    episode: int  # 0-based, as the tutorial counts
    samples: int  # environment transitions so far, this episode's included
    score: float  # sum of rewards
    length: int  # steps in the episode
    high_score: float  # best score so far, this one included
    learn_steps: int  # gradient steps so far
    wall_seconds: float  # since training started
    td_loss: float | None  # mean loss over this episode's learn steps; None if none


@dataclass(frozen=True)
class EvaluationRecord:
    """Greedy play at a sample checkpoint, as written to evaluations.csv."""

    samples: int
    learn_steps: int
    mean_score: float
    median_score: float
    min_score: float
    max_score: float
    capped: int  # episodes stopped by run.eval_max_steps
    episodes: int

    @classmethod
    def of(cls, samples: int, learn_steps: int, played: list[PlayEpisode]) -> "EvaluationRecord":
        scores = [episode.score for episode in played]
        return cls(
            samples, learn_steps, statistics.fmean(scores), statistics.median(scores), min(scores), max(scores),
            sum(episode.capped for episode in played), len(played),
        )  # fmt: skip


@dataclass(frozen=True)
class Divergence:
    """Where the loss stopped being a finite number; training stops there."""

    loss: float  # nan or +-inf
    learn_step: int  # the learn step that produced it (1-based)
    sample: int  # the environment transition it came after
    episode: int  # the episode then running

    def __str__(self) -> str:
        return f"the loss became {self.loss} at learn step {self.learn_step} (sample {self.sample}, episode {self.episode})"


@dataclass
class TrainResult:
    config: Config
    spec: EnvSpec
    learner: Learner
    buffer: ReplayBuffer
    episodes: list[EpisodeRecord] = field(default_factory=list)
    evaluations: list[EvaluationRecord] = field(default_factory=list)
    samples: int = 0
    unfinished_score: float = 0.0  # the episode still running when training stopped
    unfinished_length: int = 0
    wall_seconds: float = 0.0
    divergence: Divergence | None = None
    backend: str = "single"  # "single": this loop; "population": trained batched with others
    population: int = 1  # members trained together, this one included

    @property
    def status(self) -> str:
        return "diverged" if self.divergence is not None else "complete"

    @property
    def transitions_processed(self) -> int:
        """Transitions the learner computed a TD error for (the tutorial's "64x more")."""
        return self.learner.learn_steps * self.config.replay.batch_size


def initial_network(config: Config, spec: EnvSpec, device: torch.device) -> QNetwork:
    """The seed's initial network: the same weights for every variant of equal shape."""
    generator = seeding.torch_generator(config.run.seed, "network")
    network = build_network(spec.obs_dim, spec.n_actions, config.network.hidden, generator)
    return network.to(device)


def replay_capacity(config: Config) -> int:
    """Slots to preallocate: the configured capacity, never more than the budget."""
    capacity = config.replay.capacity
    return config.run.samples if capacity is None else min(capacity, config.run.samples)


def train(
    config: Config,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_checkpoint: Callable[[int, QNetwork], None] | None = None,
    on_evaluation: Callable[[EvaluationRecord], None] | None = None,
    progress_every: int = 500,
) -> TrainResult:
    """Train one agent for `config.run.samples` environment transitions.

    Callbacks: `on_episode(record)` after each finished episode,
    `on_progress(samples)` every `progress_every` samples, and
    `on_checkpoint(samples, network)` every `run.checkpoint_every` samples,
    `on_evaluation(record)` after each greedy evaluation (`run.eval_every`),
    whose time is kept off the training clock. A loss that is not finite
    stops training: `result.divergence` says where.
    """
    run, replay = config.run, config.replay
    runtime.tune_allocator()
    device = runtime.resolve_device(run.device)
    env, spec = make_env(config.env)
    learner = Learner(initial_network(config, spec, device), config.learner, seeding.numpy_generator(run.seed, "explore"))
    buffer = ReplayBuffer(replay_capacity(config), spec.obs_dim)
    replay_rng = seeding.numpy_generator(run.seed, "replay")
    reset_seeds = seeding.ResetSeeds(run.seed, "env")
    result = TrainResult(config, spec, learner, buffer)

    start = time.perf_counter()
    obs, _ = env.reset(seed=reset_seeds.next())
    score, length, high_score = 0.0, 0, float("-inf")
    # updates_per_step as an exact ratio: after k steps past warm-up, floor(k * u) learn steps are due
    ratio = Fraction(replay.updates_per_step).limit_denominator(1_000_000)
    steps_past_warmup = 0
    loss_sum, losses = 0.0, 0
    for sample in range(1, run.samples + 1):
        action = learner.act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated, truncated)
        if len(buffer) >= replay.warmup:
            steps_past_warmup += 1
            due = steps_past_warmup * ratio.numerator // ratio.denominator  # learn steps owed by now
            while learner.learn_steps < due and result.divergence is None:
                loss = float(learner.learn(buffer.sample(replay.batch_size, replay_rng, replay.with_replacement, device)))
                if math.isfinite(loss):
                    loss_sum, losses = loss_sum + loss, losses + 1
                else:
                    result.divergence = Divergence(loss, learner.learn_steps, sample, len(result.episodes))
            if result.divergence is not None:
                break
        score += float(reward)
        length += 1
        if terminated or truncated:
            high_score = max(high_score, score)
            record = EpisodeRecord(
                episode=len(result.episodes), samples=sample, score=score, length=length,
                high_score=high_score, learn_steps=learner.learn_steps,
                wall_seconds=time.perf_counter() - start,
                td_loss=loss_sum / losses if losses else None,
            )  # fmt: skip
            result.episodes.append(record)
            if on_episode is not None:
                on_episode(record)
            obs, _ = env.reset(seed=reset_seeds.next())
            score, length = 0.0, 0
            loss_sum, losses = 0.0, 0
        else:
            obs = next_obs
        if on_progress is not None and sample % progress_every == 0:
            on_progress(sample)
        if on_checkpoint is not None and run.checkpoint_every and sample % run.checkpoint_every == 0:
            on_checkpoint(sample, learner.network)
        if run.eval_every and sample % run.eval_every == 0:
            paused = time.perf_counter()
            played = play(learner.network, config.env, run.eval_episodes, run.seed, run.eval_max_steps)
            result.evaluations.append(EvaluationRecord.of(sample, learner.learn_steps, played))
            if on_evaluation is not None:
                on_evaluation(result.evaluations[-1])
            start += time.perf_counter() - paused  # evaluation is not training time
    env.close()
    result.samples = sample
    result.unfinished_score, result.unfinished_length = score, length
    result.wall_seconds = time.perf_counter() - start
    return result
