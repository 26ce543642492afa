"""What training reports: episodes, greedy evaluations, divergence, and each member's result."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from dqnlab.config import Config
from dqnlab.engine.envs import EnvSpec
from dqnlab.engine.network import QNetwork
from dqnlab.engine.replay import Ring


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode, as written to episodes.csv."""

    episode: int  # 0-based, as the tutorial counts
    samples: int  # environment transitions so far, this episode's included
    score: float  # sum of rewards
    length: int  # steps in the episode
    terminated: int  # 1: the environment terminated it (a failure on CartPole, the goal on Acrobot); 0: a time limit truncated it
    high_score: float  # best score so far, this one included
    learn_steps: int  # gradient steps so far
    wall_seconds: float  # since training started
    td_loss: float | None  # mean loss over this episode's learn steps; None if none


@dataclass(frozen=True)
class Reached:
    """When the running episode's score first reached a score: not when that episode ended."""

    score: float
    samples: int  # the sample (1-based) on which the running score first became >= score
    wall_seconds: float  # the member's clock at that sample


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
    def of(cls, samples: int, learn_steps: int, scores: list[float], capped: int) -> EvaluationRecord:
        return cls(
            samples, learn_steps, statistics.fmean(scores), statistics.median(scores), min(scores), max(scores),
            capped, len(scores),
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


@dataclass(frozen=True)
class TrainResult:
    """One member's training, single run or population member alike."""

    config: Config
    spec: EnvSpec
    network: QNetwork  # the final weights (a CPU copy)
    episodes: tuple[EpisodeRecord, ...]
    evaluations: tuple[EvaluationRecord, ...]
    samples: int  # transitions trained on: run.samples, or fewer if it diverged
    learn_steps: int
    unfinished_score: float  # the episode still running when training stopped
    unfinished_length: int
    reached: tuple[Reached, ...]  # one per score of the run's running targets it reached, lowest first (`Ledger`)
    wall_seconds: float  # training time, greedy evaluations excluded
    divergence: Divergence | None  # None: the loss stayed finite
    replay: Ring | None  # the replay memory at the end; None unless train(..., keep_replay=True)
    replay_capacity: int  # slots the memory had
    device: str
    threads: int  # torch CPU threads it ran with
    population: int  # members trained together, this one included (1: a single run)

    @property
    def status(self) -> str:
        return "diverged" if self.divergence is not None else "complete"

    @property
    def transitions_processed(self) -> int:
        """Transitions the learner computed a TD error for (the tutorial's "64x more")."""
        return self.learn_steps * self.config.replay.batch_size
