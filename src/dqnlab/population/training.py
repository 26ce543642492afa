"""The population's training loop: every member steps, acts and learns at once.

The loop is `dqnlab.training.train`'s, batched over members: act, step,
store, then learn once the memory holds `replay.warmup` transitions, with
`floor(k * updates_per_step)` learn steps owed after k steps. Members run in
lockstep for exactly `run.samples` transitions each; a member whose loss
stops being finite stops there, exactly as a single run does, and the others
go on. Each member ends with an ordinary `TrainResult`, so run directories
are written by the same code as single runs'.

Wall-clock seconds are the population's clock: every member's episode at
step t finished after the time the whole population took to reach step t.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np
import torch

from dqnlab import runtime, seeding
from dqnlab.config import Config
from dqnlab.errors import DqnlabError
from dqnlab.networks import QNetwork
from dqnlab.play import play
from dqnlab.population.draws import MemberDraws
from dqnlab.population.envs import make_member_envs
from dqnlab.population.learner import PopulationLearner
from dqnlab.population.network import StackedQNetwork
from dqnlab.population.replay import PopulationReplay
from dqnlab.training import Divergence, EpisodeRecord, EvaluationRecord, TrainResult, initial_network, replay_capacity

BACKEND = "population"


@dataclass
class MemberLearner:
    """What a run directory needs of a member's learner: its network, steps and device."""

    network: QNetwork
    learn_steps: int
    device: torch.device


class MemberReplay:
    """Member k's replay memory, copied out of the population's tensors only when saved."""

    def __init__(self, replay: PopulationReplay, k: int) -> None:
        self.capacity, self.bytes_per_transition = replay.capacity, replay.bytes_per_transition
        self._replay, self._k = replay, k

    def save(self, path) -> None:
        self._replay.member(self._k).save(path)


def check_population(configs: list[Config]) -> Config:
    """The configuration the members share; they may differ in `run.seed` only."""
    if not configs:
        raise DqnlabError("a population needs at least one member")
    shared = dataclasses.replace(configs[0], run=dataclasses.replace(configs[0].run, seed=0))
    for config in configs[1:]:
        if dataclasses.replace(config, run=dataclasses.replace(config.run, seed=0)) != shared:
            raise DqnlabError("members of a population may differ only in run.seed; run other settings as another population")
    return configs[0]


class Ledger:
    """Each member's running account: its episode so far, its learn steps, whether it still trains."""

    def __init__(self, results: list[TrainResult], samples: int) -> None:
        n = len(results)
        self.results = results
        self.alive = np.ones(n, dtype=np.bool_)  # (N,) members still training (not diverged)
        self.score, self.length = np.zeros(n), np.zeros(n, dtype=np.int64)  # (N,) the running episode
        self.high_score = np.full(n, -np.inf)  # (N,)
        self.loss_sum, self.losses = np.zeros(n), np.zeros(n, dtype=np.int64)  # (N,) this episode's learn steps
        self.learn_steps = np.zeros(n, dtype=np.int64)  # (N,) learn steps each member took
        self.stopped_at = np.full(n, samples)  # (N,) each member's last sample

    def learned(self, loss: np.ndarray, sample: int, seconds: float) -> list[int]:
        """Book one learn step's losses (N,); members whose loss is not finite stop here. Returns those."""
        alive = self.alive.copy()
        finite = np.isfinite(loss)  # (N,)
        self.learn_steps[alive] += 1
        self.loss_sum[alive & finite] += loss[alive & finite]
        self.losses[alive & finite] += 1
        stopped = [int(k) for k in np.flatnonzero(alive & ~finite)]
        for k in stopped:  # exactly where a single run would stop: before this step's reward is counted
            result = self.results[k]
            result.divergence = Divergence(float(loss[k]), int(self.learn_steps[k]), sample, len(result.episodes))
            result.unfinished_score, result.unfinished_length = float(self.score[k]), int(self.length[k])
            result.wall_seconds = seconds
            self.stopped_at[k], self.alive[k] = sample, False
        return stopped

    def stepped(self, reward: np.ndarray, ended: np.ndarray, sample: int, seconds: float,
                on_episode: Callable[[int, EpisodeRecord], None] | None) -> None:
        """Book one environment step: rewards (N,); members whose episode `ended` (N,) get their record."""
        self.score += reward
        self.length += 1
        for k in np.flatnonzero(ended & self.alive):
            self.high_score[k] = max(self.high_score[k], self.score[k])
            record = EpisodeRecord(
                episode=len(self.results[k].episodes), samples=sample, score=float(self.score[k]),
                length=int(self.length[k]), high_score=float(self.high_score[k]), learn_steps=int(self.learn_steps[k]),
                wall_seconds=seconds, td_loss=float(self.loss_sum[k] / self.losses[k]) if self.losses[k] else None,
            )  # fmt: skip
            self.results[k].episodes.append(record)
            if on_episode is not None:
                on_episode(int(k), record)
        self.score[ended], self.length[ended], self.loss_sum[ended], self.losses[ended] = 0.0, 0, 0.0, 0

    def close(self, seconds: float) -> None:
        """Totals of the members that trained to the end of the budget."""
        for k, result in enumerate(self.results):
            result.samples = int(self.stopped_at[k])
            if self.alive[k]:
                result.unfinished_score, result.unfinished_length = float(self.score[k]), int(self.length[k])
                result.wall_seconds = seconds


def train_population(
    configs: list[Config],
    on_episode: Callable[[int, EpisodeRecord], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_checkpoint: Callable[[int, int, QNetwork], None] | None = None,
    on_evaluation: Callable[[int, EvaluationRecord], None] | None = None,
    progress_every: int = 500,
) -> list[TrainResult]:
    """Train one member per configuration, all at once; member k's callbacks get k first.

    The configurations may differ only in their seeds. Returns one
    TrainResult per member, in order, as `dqnlab.training.train` would.
    """
    base = check_population(configs)
    run, replay = base.run, base.replay
    runtime.tune_allocator()
    device = runtime.resolve_device(run.device)
    seeds = [config.run.seed for config in configs]
    n = len(configs)
    envs = make_member_envs(base.env, seeds, device)
    spec = envs.spec
    network = StackedQNetwork([initial_network(config, spec, torch.device("cpu")) for config in configs]).to(device)
    learner = PopulationLearner(network, base.learner, replay.batch_size)
    buffer = PopulationReplay(n, replay_capacity(base), spec.obs_dim, device)
    explore = MemberDraws([seeding.numpy_generator(s, "explore") for s in seeds], 2, device)
    replay_draws = MemberDraws([seeding.numpy_generator(s, "replay") for s in seeds], replay.batch_size, device)
    results = [TrainResult(config, spec, None, None, backend=BACKEND, population=n) for config in configs]
    ledger = Ledger(results, run.samples)
    alive = torch.ones(n, dtype=torch.bool, device=device)  # (N,) the ledger's alive, on the device

    start = time.perf_counter()
    obs = envs.reset(np.ones(n, dtype=np.bool_))  # (N, obs_dim)
    ratio = Fraction(replay.updates_per_step).limit_denominator(1_000_000)
    steps_past_warmup = 0
    for sample in range(1, run.samples + 1):
        action = learner.act(obs, explore.next())  # (N,)
        step = envs.step(action)
        buffer.add(obs, action, step.reward, step.next_obs, step.terminated, step.truncated)
        if len(buffer) >= replay.warmup:
            steps_past_warmup += 1
            due = steps_past_warmup * ratio.numerator // ratio.denominator  # learn steps owed by now
            while learner.learn_steps < due and ledger.alive.any():
                index = buffer.indices(replay_draws.next(), replay.with_replacement)  # (N, B)
                loss = learner.learn(buffer.gather(index), alive).cpu().numpy()  # (N,)
                if ledger.learned(loss, sample, time.perf_counter() - start):
                    alive = torch.as_tensor(ledger.alive, device=device)  # (N,)
        outcome = torch.stack((step.reward, step.terminated.float(), step.truncated.float())).cpu().numpy()  # (3, N)
        ended = (outcome[1] > 0) | (outcome[2] > 0)  # (N,) episodes that ended, by termination or truncation
        ledger.stepped(outcome[0], ended, sample, time.perf_counter() - start, on_episode)
        obs = envs.reset(ended) if ended.any() else step.next_obs  # (N, obs_dim): fresh starts where episodes ended
        if on_progress is not None and sample % progress_every == 0:
            on_progress(sample)
        if on_checkpoint is not None and run.checkpoint_every and sample % run.checkpoint_every == 0:
            for k in np.flatnonzero(ledger.alive):
                on_checkpoint(int(k), sample, network.member(k))
        if run.eval_every and sample % run.eval_every == 0:
            paused = time.perf_counter()
            for k in np.flatnonzero(ledger.alive):
                played = play(network.member(k), base.env, run.eval_episodes, seeds[k], run.eval_max_steps)
                results[k].evaluations.append(EvaluationRecord.of(sample, int(ledger.learn_steps[k]), played))
                if on_evaluation is not None:
                    on_evaluation(int(k), results[k].evaluations[-1])
            start += time.perf_counter() - paused  # evaluation is not training time
        if not ledger.alive.any():
            break
    envs.close()
    ledger.close(time.perf_counter() - start)
    for k, result in enumerate(results):
        result.learner = MemberLearner(network.member(k), int(ledger.learn_steps[k]), device)
        result.buffer = MemberReplay(buffer, k)
    return results
