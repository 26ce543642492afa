"""Shared fixtures: tiny configurations so the suite stays fast."""

from __future__ import annotations

import pytest

from dqnlab.config import Config, resolve


def tiny_config(agent: str = "replay", *overrides: str) -> Config:
    """The tutorial preset with a 16-unit network, a short budget and (replay) batches of 8."""
    base = ["network.hidden=[16]", "run.samples=400"]
    if agent == "replay":
        base += ["replay.batch_size=8", "replay.warmup=8"]
    return resolve("tutorial", agent, None, [*base, *overrides])


@pytest.fixture
def tiny():
    return tiny_config
