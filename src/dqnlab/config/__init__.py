"""Configuration: frozen dataclasses, named presets, TOML files and overrides.

A configuration is resolved in this order, each step overriding the last:

1. the preset (`tutorial` unless told otherwise),
2. the agent (`naive` turns the preset's replay section into capacity 1,
   batch 1, no warm-up: the tutorial's learn-on-arrival agent),
3. the sections of a TOML file (`--config FILE`),
4. each `--set section.key=value`, whose value is read as a TOML literal.

The resolved configuration is saved as `config.json` beside every run and can
be read back with `config_from_dict`.

The package is in three parts: `schema` (dataclasses, presets, validation,
JSON), `resolving` (TOML files and overrides) and `profiles` (what success
means on each environment: what the measures and reports follow); the first
two are importable from `dqnlab.config`.
"""

from __future__ import annotations

from dqnlab.config.resolving import (
    SHORTCUTS,
    apply_override,
    apply_sections,
    check_given_once,
    config_from_dict,
    parse_override,
    read_toml,
    resolve,
    set_value,
)
from dqnlab.config.schema import (
    ACTORS,
    AGENTS,
    BehaviourConfig,
    Config,
    EnvConfig,
    LOSSES,
    LearnerConfig,
    MIN_UPDATES_PER_STEP,
    NetworkConfig,
    OPTIMIZERS,
    PRESETS,
    ReplayConfig,
    RunConfig,
    SECTIONS,
    TARGET_UPDATES,
    TD_GRADIENTS,
    config_to_dict,
    config_to_json,
    preset,
    validate,
    with_agent,
)

__all__ = [
    "ACTORS",
    "AGENTS",
    "BehaviourConfig",
    "Config",
    "EnvConfig",
    "LOSSES",
    "LearnerConfig",
    "MIN_UPDATES_PER_STEP",
    "NetworkConfig",
    "OPTIMIZERS",
    "PRESETS",
    "ReplayConfig",
    "RunConfig",
    "SECTIONS",
    "SHORTCUTS",
    "TARGET_UPDATES",
    "TD_GRADIENTS",
    "apply_override",
    "apply_sections",
    "check_given_once",
    "config_from_dict",
    "config_to_dict",
    "config_to_json",
    "parse_override",
    "preset",
    "read_toml",
    "resolve",
    "set_value",
    "validate",
    "with_agent",
]
