"""What a backend reports while it runs tasks: typed events, the same from every backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union


@dataclass(frozen=True)
class Started:
    """A unit of work began: one run ("naive/seed-003") or a population ("naive/8 seeds")."""

    key: str


@dataclass(frozen=True)
class Advanced:
    """A unit trained this many samples (per member)."""

    key: str
    samples: int


@dataclass(frozen=True)
class Finished:
    """One run ended: its result.json content, or {"status": "failed", "error": ...}."""

    key: str
    outcome: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.outcome.get("status") == "failed"


@dataclass(frozen=True)
class Ended:
    """A population ended (its members' Finished events came first)."""

    key: str


@dataclass(frozen=True)
class Retried:
    """A unit lost its worker and was resubmitted (Ray backend)."""

    key: str
    reason: str




def outcome_line(outcome: dict[str, Any]) -> str:
    """A finished run in a few words: status, episodes and seconds, or the failure."""
    status = outcome.get("status", "?")
    if status == "failed":
        return f"failed: {outcome.get('error', '')}"
    return f"{status}, {outcome.get('episodes', 0)} episodes, {outcome.get('wall_seconds', 0):.0f} s"


@dataclass(frozen=True)
class Planned:
    """A sweep's plan, before anything runs: how many runs, how many kept, and why existing ones are redone."""

    variants: int
    seeds: int
    samples: int
    kept: int
    to_run: int
    how: str  # the backend's description: "on 2 worker(s)"
    redone: dict[str, str]  # run key -> why its directory is redone


@dataclass(frozen=True)
class TimingAlone:
    """After the sweep: one agent of a variant is timed alone on one thread (its runs shared a clock)."""

    variant: str
    seed: int


Event = Union[Planned, Started, Advanced, Finished, Ended, Retried, TimingAlone]
OnEvent = Callable[[Event], None]
