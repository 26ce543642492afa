"""A recorded stream of transitions, and the environment stand-in that feeds it back.

`RecordingEnvs` wraps the members' environments and keeps every transition
they step through, in order; `StreamEnvs` stands in for the environments of
learners that do not act (engine/behaviour.py): `reset` and `step` hand back
the recorded transitions one by one and never touch an environment. The
training loop cannot tell the two apart, apart from taking the stream's
recorded action instead of choosing its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from dqnlab.engine.envs import EnvSpec, MemberEnvs, Step
from dqnlab.errors import DqnlabError


@dataclass(frozen=True)
class Stream:
    """S steps of N members' transitions: row t is every member's t-th transition (samples are 1-based: t + 1)."""

    spec: EnvSpec  # the environment that produced them
    obs: torch.Tensor  # (S, N, obs_dim) float32: what the actor saw
    action: torch.Tensor  # (S, N) int64: what it did
    reward: torch.Tensor  # (S, N) float32
    next_obs: torch.Tensor  # (S, N, obs_dim) float32: the true next state, also where an episode ended
    terminated: torch.Tensor  # (S, N) bool
    truncated: torch.Tensor  # (S, N) bool

    @property
    def steps(self) -> int:
        return int(self.action.shape[0])

    @property
    def members(self) -> int:
        return int(self.action.shape[1])

    def to(self, device: torch.device) -> Stream:
        return replace(self, **{name: getattr(self, name).to(device) for name in TENSORS})

    def rows(self, start: int, stop: int, members: slice = slice(None)) -> Stream:
        """Steps start..stop-1 of the chosen members: (stop - start, N', ...)."""
        return replace(self, **{name: getattr(self, name)[start:stop, members] for name in TENSORS})

    @staticmethod
    def nbytes(steps: int, members: int, obs_dim: int) -> int:
        """Bytes of a stream of that size: two float32 observations, an int64 action, a float32 reward, two flags."""
        return steps * members * (2 * 4 * obs_dim + 8 + 4 + 1 + 1)


TENSORS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")


class RecordingEnvs:
    """The members' environments, keeping every transition stepped through (up to `steps` of them)."""

    def __init__(self, envs: MemberEnvs, members: int, steps: int) -> None:
        self.envs, self.spec = envs, envs.spec
        obs_dim = envs.spec.obs_dim
        self.stream = Stream(
            spec=envs.spec,
            obs=torch.zeros((steps, members, obs_dim), dtype=torch.float32),  # (S, N, obs_dim)
            action=torch.zeros((steps, members), dtype=torch.int64),  # (S, N)
            reward=torch.zeros((steps, members), dtype=torch.float32),  # (S, N)
            next_obs=torch.zeros((steps, members, obs_dim), dtype=torch.float32),  # (S, N, obs_dim)
            terminated=torch.zeros((steps, members), dtype=torch.bool),  # (S, N)
            truncated=torch.zeros((steps, members), dtype=torch.bool),  # (S, N)
        )  # on the CPU: a recording is read back once per step, not per learn step
        self.recorded = 0
        self.current: torch.Tensor | None = None  # (N, obs_dim) the observation the next action answers

    def reset(self, members: np.ndarray) -> torch.Tensor:
        self.current = self.envs.reset(members)  # (N, obs_dim)
        return self.current

    def step(self, action: torch.Tensor) -> Step:
        if self.current is None:
            raise DqnlabError("a recording environment was stepped before its first reset")
        step = self.envs.step(action)
        t, s = self.recorded, self.stream
        s.obs[t], s.action[t], s.next_obs[t] = self.current, action, step.next_obs  # (N, obs_dim), (N,), (N, obs_dim)
        s.reward[t], s.terminated[t], s.truncated[t] = step.reward, step.terminated, step.truncated  # (N,) each
        self.recorded += 1
        self.current = step.next_obs  # (N, obs_dim)
        return step

    def recorded_stream(self) -> Stream:
        """The transitions recorded so far: (recorded, N, ...)."""
        return self.stream.rows(0, self.recorded)

    def close(self) -> None:
        self.envs.close()


class StreamEnvs:
    """Stands in for the environments of learners that do not act: the stream's transitions, in order.

    `reset` gives every member's observation of its next recorded transition
    (a fresh start where an episode ended: the recording reset there too),
    `recorded_action` the action recorded for it, and `step` the recorded
    outcome, whatever action it is passed. After the last transition there is
    no next one: `reset` then gives the last next observations (an episode
    that ended on the budget's last sample is reset, and never stepped).
    """

    def __init__(self, stream: Stream, members: int, device: torch.device) -> None:
        if stream.members != members:
            raise DqnlabError(f"the stream holds {stream.members} member(s)' transitions; the population has {members}")
        self.stream, self.spec = stream.to(device), stream.spec
        self.stepped = 0

    def reset(self, members: np.ndarray) -> torch.Tensor:
        if self.stepped == self.stream.steps:
            return self.stream.next_obs[-1]  # (N, obs_dim): the stream is over; nothing steps from here
        return self.stream.obs[self._next()]  # (N, obs_dim)

    def recorded_action(self) -> torch.Tensor:
        return self.stream.action[self._next()]  # (N,)

    def step(self, action: torch.Tensor) -> Step:
        t, s = self._next(), self.stream
        self.stepped += 1
        return Step(s.next_obs[t], s.reward[t], s.terminated[t], s.truncated[t])

    def _next(self) -> int:
        if self.stepped >= self.stream.steps:
            raise DqnlabError(f"the stream ends after {self.stream.steps:,} transitions; the run asked for more")
        return self.stepped

    def close(self) -> None:
        pass
