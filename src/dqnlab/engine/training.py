"""The training loop: N >= 1 members of one configuration, each with its own seed, stepped together.

Each environment step, for every member at once, as in the tutorial's replay code:

    action = learner.act(obs)                                          # epsilon-greedy
    next_obs, reward, terminated, truncated = envs.step(action)
    sampler.add(obs, action, reward, next_obs, terminated, truncated)  # store first,
    learner.learn(sampler.draw(draws))                                 # then learn
    sampler.learned(learner.errors)                                    # (prioritized: new priorities)

so the newest transition can be drawn in its own step's batch. Learning starts
once the memory holds `replay.warmup` transitions; after k steps past that,
floor(k * updates_per_step) learn steps are owed. Every member trains for
exactly `run.samples` transitions; an episode still running then is not
reported as finished. A member whose loss stops being finite stops there and
the others go on.

A single run is a population of one (`train`). Member k draws every random
number (initial weights, episode starts, exploration, replay batches) from
seed k's own streams, in the same order whatever N is, so seed k draws the
same numbers alone and beside any companions, on every backend.

Wall-clock seconds are the population's clock: a member's episode that ended
at step t is stamped with the time the whole population took to reach step t.
With N > 1 that measures the batch, not one agent; the backends say so in
result.json ("clock": "shared") and analysis maps such runs onto one agent's
clock (`dqnlab.analysis.clocks`).

Each member also records whether each episode was terminated (a failure on
CartPole, the goal on Acrobot) or truncated, and the sample at which its
running episode first reached each of its running targets, so that measures
need not wait for an episode to end. The targets come from the configuration
(`env.targets`, or the environment's profile, `config.profiles`): CartPole's
200 and 500; none where the profile reads its targets from finished
episodes instead (returns of -1 a step only fall while an episode runs).

Members that do not act (`behaviour.actor` other than "self",
engine/behaviour.py) run the same loop on a recorded stream of their seed's
behaviour: `StreamEnvs` hands them its transitions and recorded actions in
order, and no environment is made for them.
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
from dqnlab.config.profiles import running_targets
from dqnlab.engine.behaviour import acting_config, acts, learns_as_it_acts, play_stream
from dqnlab.engine.envs import EnvSpec, MemberEnvs, make_member_envs
from dqnlab.engine.evaluation import greedy_episodes
from dqnlab.engine.learner import Learner
from dqnlab.engine.network import QNetwork, StackedQNetwork, build_network
from dqnlab.engine.records import Divergence, EpisodeRecord, EvaluationRecord, Reached, TrainResult
from dqnlab.engine.replay import Replay
from dqnlab.engine.sampling import Sampler
from dqnlab.engine.stream import RecordingEnvs, Stream, StreamEnvs
from dqnlab.errors import DqnlabError


def initial_network(config: Config, spec: EnvSpec) -> QNetwork:
    """The seed's initial network (on the CPU): the same weights for every variant of equal shape."""
    generator = seeding.torch_generator(config.run.seed, "network")
    conv = config.network.conv  # a frame only matters to convolutions: a fully connected network reads it flat
    return build_network(spec.obs_dim, spec.n_actions, config.network.hidden, generator, conv, spec.frame if conv else None)


def replay_capacity(config: Config) -> int:
    """Slots to preallocate: the configured capacity, never more than the budget."""
    capacity = config.replay.capacity
    return config.run.samples if capacity is None else min(capacity, config.run.samples)


def check_population(configs: list[Config]) -> Config:
    """The configuration the members share; they may differ in `run.seed` only."""
    if not configs:
        raise DqnlabError("a population needs at least one member")
    shared = dataclasses.replace(configs[0], run=dataclasses.replace(configs[0].run, seed=0))
    for config in configs[1:]:
        if dataclasses.replace(config, run=dataclasses.replace(config.run, seed=0)) != shared:
            raise DqnlabError("members of a population may differ only in run.seed; run other settings as another population")
    return configs[0]


def evaluate(network: QNetwork, config: Config, samples: int, learn_steps: int) -> EvaluationRecord:
    """Greedy play from the seed's evaluation starts, the same at every checkpoint and for every variant."""
    run = config.run
    played, _, _, _ = greedy_episodes(network, config.env, run.eval_episodes, run.seed, run.eval_max_steps)
    return EvaluationRecord.of(samples, learn_steps, [e.score for e in played], sum(e.capped for e in played))


def train(
    config: Config,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_checkpoint: Callable[[int, QNetwork], None] | None = None,
    on_evaluation: Callable[[EvaluationRecord], None] | None = None,
    progress_every: int = 500,
    keep_replay: bool = False,
    stream: Stream | None = None,
    behaviour_network: QNetwork | None = None,
) -> TrainResult:
    """Train one agent for `config.run.samples` transitions: a population of one.

    Callbacks as `train_population`'s, without the member index.
    """
    def one(callback):
        return None if callback is None else (lambda k, *args: callback(*args))

    return train_population(
        [config], one(on_episode), on_progress, one(on_checkpoint), one(on_evaluation), progress_every, keep_replay, stream,
        behaviour_network,
    )[0]


def train_population(
    configs: list[Config],
    on_episode: Callable[[int, EpisodeRecord], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_checkpoint: Callable[[int, int, QNetwork], None] | None = None,
    on_evaluation: Callable[[int, EvaluationRecord], None] | None = None,
    progress_every: int = 500,
    keep_replay: bool = False,
    stream: Stream | None = None,
    behaviour_network: QNetwork | None = None,
) -> list[TrainResult]:
    """Train one member per configuration, all at once; the configurations may differ only in their seeds.

    Callbacks get the member's index k first: `on_episode(k, record)` after
    each finished episode, `on_checkpoint(k, samples, network)` every
    `run.checkpoint_every` samples, `on_evaluation(k, record)` after each
    greedy evaluation (`run.eval_every`; its time is kept off the clock);
    `on_progress(samples)` every `progress_every` samples. Returns one
    TrainResult per member, in order; `keep_replay` keeps each member's replay
    memory in it. Members that do not act learn from `stream` (S, N, ...), or
    if it is None, from their behaviour's, recorded here first
    (`behaviour_stream`; `behaviour_network` is the saved network that
    behaviour.actor "weights" plays).
    """
    base = check_population(configs)
    device = runtime.resolve_device(base.run.device)
    seeds = [config.run.seed for config in configs]
    if acts(base):
        envs: MemberEnvs = make_member_envs(base.env, seeds, device)
    else:
        stream = behaviour_stream(configs, device, behaviour_network) if stream is None else stream
        if stream.spec.id != base.env.id:
            raise DqnlabError(f"the stream was recorded on {stream.spec.id}; these members train on {base.env.id}")
        envs = StreamEnvs(stream, len(configs), device)
    return _train_members(configs, envs, Callbacks(on_episode, on_progress, on_checkpoint, on_evaluation, progress_every),
                          device, keep_replay)  # fmt: skip


def behaviour_stream(configs: list[Config], device: torch.device, network: QNetwork | None = None) -> Stream:
    """The transitions the members' behaviour produces for each member's seed, recorded: (S, N, ...).

    A learning behaviour (the preset's naive or replay agent) trains as a
    population of its own while every transition it steps through is kept;
    `network` is the saved network that actor "weights" plays.
    """
    base = check_population(configs)
    if not learns_as_it_acts(base):
        return play_stream(configs, device, network)
    actors = [acting_config(config) for config in configs]
    seeds = [config.run.seed for config in configs]
    envs = RecordingEnvs(make_member_envs(base.env, seeds, device), len(configs), base.run.samples)
    _train_members(actors, envs, Callbacks(None, None, None, None, 1), device, keep_replay=False, evaluate_members=False)
    return envs.recorded_stream()


def _train_members(configs: list[Config], envs: MemberEnvs, callbacks: Callbacks, device: torch.device, keep_replay: bool,
                   evaluate_members: bool = True) -> list[TrainResult]:  # fmt: skip
    """Train the members on `envs` (real, recording or a recorded stream); closes `envs`."""
    base = configs[0]
    network = StackedQNetwork([initial_network(config, envs.spec) for config in configs], device)
    memory = Replay(len(configs), replay_capacity(base), envs.spec.obs_dim, device, binary=envs.spec.binary)
    ledger = Ledger(len(configs), base.run.samples, running_targets(base.env.id, base.env.targets))
    try:
        _loop(configs, envs, network, Sampler(memory, base, device), ledger, callbacks, device, evaluate_members)
    finally:
        envs.close()
    return [
        TrainResult(
            config=config, spec=envs.spec, network=network.member(k), episodes=tuple(ledger.episodes[k]),
            evaluations=tuple(ledger.evaluations[k]), samples=int(ledger.stopped_at[k]),
            learn_steps=int(ledger.learn_steps[k]), unfinished_score=float(ledger.score[k]),
            unfinished_length=int(ledger.length[k]), reached=ledger.reached_by(k), wall_seconds=float(ledger.seconds[k]),
            divergence=ledger.divergences[k], replay=memory.member(k) if keep_replay else None,
            replay_capacity=memory.capacity, device=str(device), threads=torch.get_num_threads(), population=len(configs),
        )  # fmt: skip
        for k, config in enumerate(configs)
    ]


@dataclass(frozen=True)
class Callbacks:
    """What `train_population` reports to, as it goes."""

    on_episode: Callable[[int, EpisodeRecord], None] | None
    on_progress: Callable[[int], None] | None
    on_checkpoint: Callable[[int, int, QNetwork], None] | None
    on_evaluation: Callable[[int, EvaluationRecord], None] | None
    progress_every: int


def _loop(configs: list[Config], envs: MemberEnvs | StreamEnvs, network: StackedQNetwork, sampler: Sampler, ledger: Ledger,
          callbacks: Callbacks, device: torch.device, evaluate_members: bool = True) -> None:  # fmt: skip
    """Step, store and learn until every member trained `run.samples` transitions or stopped.

    Members that act choose their actions; members that do not (`envs` is a
    `StreamEnvs`) take the stream's recorded ones.
    """
    run, replay, n = configs[0].run, configs[0].replay, len(configs)
    acting = acts(configs[0])
    seeds = [config.run.seed for config in configs]
    learner = Learner(network, configs[0].learner, replay.batch_size, keep_errors=replay.prioritized)
    explore = seeding.MemberDraws(seeds, "explore", 2, device)  # (N, 2) per step: a coin and a random action
    batches = seeding.MemberDraws(seeds, "replay", replay.batch_size, device)  # (N, B) per learn step
    alive = torch.ones(n, dtype=torch.bool, device=device)  # (N,) the ledger's alive, on the device
    ratio = Fraction(replay.updates_per_step).limit_denominator(1_000_000)
    steps_past_warmup = learn_steps = 0
    start = time.perf_counter()
    obs = envs.reset(np.ones(n, dtype=np.bool_))  # (N, obs_dim)
    for sample in range(1, run.samples + 1):
        action = learner.act(obs, explore.next(), sample) if acting else envs.recorded_action()  # (N,)
        step = envs.step(action)
        sampler.add(obs, action, step.reward, step.next_obs, step.terminated, step.truncated)
        if len(sampler.memory) >= replay.warmup:
            steps_past_warmup += 1
            due = steps_past_warmup * ratio.numerator // ratio.denominator  # learn steps owed by now
            while learn_steps < due and ledger.alive.any():
                batch = sampler.draw(batches.next(), sample)  # (N, B, ...)
                loss = learner.learn(batch, None if ledger.all_alive else alive).cpu().numpy()  # (N,)
                sampler.learned(learner.errors)  # prioritized replay: the batch's new priorities
                learn_steps += 1
                if ledger.learned(loss, sample, time.perf_counter() - start):
                    alive = torch.as_tensor(ledger.alive, device=device)  # (N,)
        reward, terminated, truncated = step.outcome()  # (N,) each, NumPy
        ended = terminated | truncated  # (N,) episodes that ended, by termination or truncation
        ledger.stepped(reward, ended, terminated, sample, time.perf_counter() - start, callbacks.on_episode)
        obs = envs.reset(ended) if ended.any() else step.next_obs  # (N, obs_dim): fresh starts where episodes ended
        if callbacks.on_progress is not None and sample % callbacks.progress_every == 0:
            callbacks.on_progress(sample)
        if callbacks.on_checkpoint is not None and run.checkpoint_every and sample % run.checkpoint_every == 0:
            for k in np.flatnonzero(ledger.alive):
                callbacks.on_checkpoint(int(k), sample, network.member(k))
        if evaluate_members and run.eval_every and sample % run.eval_every == 0:
            paused = time.perf_counter()
            for k in np.flatnonzero(ledger.alive):
                ledger.evaluations[k].append(evaluate(network.member(k), configs[k], sample, int(ledger.learn_steps[k])))
                if callbacks.on_evaluation is not None:
                    callbacks.on_evaluation(int(k), ledger.evaluations[k][-1])
            start += time.perf_counter() - paused  # evaluation is not training time
        if not ledger.alive.any():
            break
    ledger.close(time.perf_counter() - start)


class Ledger:
    """Each member's running account: its episodes, its running episode, its learn steps, whether it still trains."""

    def __init__(self, n: int, samples: int, reach_scores: tuple[float, ...] = ()) -> None:
        self.episodes: list[list[EpisodeRecord]] = [[] for _ in range(n)]
        self.evaluations: list[list[EvaluationRecord]] = [[] for _ in range(n)]
        self.divergences: list[Divergence | None] = [None] * n
        self.alive = np.ones(n, dtype=np.bool_)  # (N,) members still training (not diverged)
        self.score, self.length = np.zeros(n), np.zeros(n, dtype=np.int64)  # (N,) the running episode
        self.high_score = np.full(n, -np.inf)  # (N,)
        self.loss_sum, self.losses = np.zeros(n), np.zeros(n, dtype=np.int64)  # (N,) this episode's learn steps
        self.learn_steps = np.zeros(n, dtype=np.int64)  # (N,) learn steps each member took
        self.stopped_at = np.full(n, samples)  # (N,) each member's last sample
        self.seconds = np.zeros(n)  # (N,) each member's training time
        self.targets = tuple(reach_scores)  # the running episode's scores whose first reaching is recorded
        self.reach_scores = np.array(self.targets, dtype=np.float64).reshape(-1, 1)  # (R, 1)
        self.reach_sample = np.zeros((len(self.targets), n), dtype=np.int64)  # (R, N) 0: not reached yet
        self.reach_seconds = np.zeros((len(self.targets), n))  # (R, N)
        self.all_alive = True  # every member still trains: the books take their short way
        self._next_reach()

    def learned(self, loss: np.ndarray, sample: int, seconds: float) -> list[int]:
        """Book one learn step's losses (N,); members whose loss is not finite stop here. Returns those."""
        if self.all_alive and np.isfinite(loss).all():  # the usual case, in four array operations
            self.learn_steps += 1
            self.loss_sum += loss
            self.losses += 1
            return []
        alive = self.alive.copy()
        finite = np.isfinite(loss)  # (N,)
        self.learn_steps[alive] += 1
        self.loss_sum[alive & finite] += loss[alive & finite]
        self.losses[alive & finite] += 1
        stopped = [int(k) for k in np.flatnonzero(alive & ~finite)]
        for k in stopped:  # before this step's reward is counted
            self.divergences[k] = Divergence(float(loss[k]), int(self.learn_steps[k]), sample, len(self.episodes[k]))
            self.stopped_at[k], self.seconds[k], self.alive[k] = sample, seconds, False
        self.all_alive = bool(self.alive.all())
        return stopped

    def stepped(self, reward: np.ndarray, ended: np.ndarray, terminated: np.ndarray, sample: int, seconds: float,
                on_episode: Callable[[int, EpisodeRecord], None] | None) -> None:  # fmt: skip
        """Book one environment step: rewards (N,); members whose episode `ended` (N,) get their record,
        `terminated` (N,) saying which ended by termination."""
        live = self.alive  # (N,) a diverged member's account stays as it stopped
        if self.all_alive:
            self.score += reward
            self.length += 1
        else:
            self.score[live] += reward[live]
            self.length[live] += 1
        if (self.score >= self.next_reach).any():  # some member's running score reached a score it had not
            first = (self.score >= self.reach_scores) & (self.reach_sample == 0) & live  # (R, N) reached just now
            self.reach_sample[first], self.reach_seconds[first] = sample, seconds
            self._next_reach()
        if not ended.any():
            return
        for k in np.flatnonzero(ended & live):
            self.high_score[k] = max(self.high_score[k], self.score[k])
            record = EpisodeRecord(
                episode=len(self.episodes[k]), samples=sample, score=float(self.score[k]),
                length=int(self.length[k]), terminated=int(terminated[k]), high_score=float(self.high_score[k]),
                learn_steps=int(self.learn_steps[k]), wall_seconds=seconds, td_loss=float(self.loss_sum[k] / self.losses[k]) if self.losses[k] else None,
            )  # fmt: skip
            self.episodes[k].append(record)
            if on_episode is not None:
                on_episode(int(k), record)
        reset = ended & live  # (N,)
        self.score[reset], self.length[reset], self.loss_sum[reset], self.losses[reset] = 0.0, 0, 0.0, 0

    def _next_reach(self) -> None:
        """Each member's lowest target not reached yet (inf once all are, or without targets): (N,)."""
        self.next_reach = np.where(self.reach_sample == 0, self.reach_scores, np.inf).min(axis=0, initial=np.inf)  # (N,)

    def reached_by(self, k: int) -> tuple[Reached, ...]:
        """Member k's first reaching of each target, for those it reached."""
        return tuple(
            Reached(float(score), int(self.reach_sample[i, k]), float(self.reach_seconds[i, k]))
            for i, score in enumerate(self.targets)
            if self.reach_sample[i, k] > 0
        )

    def close(self, seconds: float) -> None:
        """The training time of the members that trained to the end of the budget."""
        self.seconds[self.alive] = seconds
