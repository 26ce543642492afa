"""An experiment from a TOML experiment file and `dqnlab compare`'s options, or from a study file, every key checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from dqnlab.config import check_given_once
from dqnlab.errors import DqnlabError
from dqnlab.experiments.spec import (
    EXPERIMENT_KEYS,
    STUDY_KEYS,
    Experiment,
    PlaySettings,
    build_experiment,
    env_name,
    play_settings,
    study_envs,
    parse_variant_option,
    read_experiment_file,
)


def experiment_from(experiment_file: str | Path | None = None, preset: str | None = None, samples: int | None = None,
                    seeds: int | Sequence[int] | None = None, variants: Sequence[str] = (), overrides: Sequence[str] = (),
                    eval_every: int | None = None, device: str | None = None, env_id: str | None = None) -> Experiment:  # fmt: skip
    """The experiment an experiment file and compare's options describe; options win over the file.

    `variants`: `--variant NAME:key=value,...` texts (they replace the file's
    variants); `overrides`: `--set section.key=value` texts, shared by every variant;
    `eval_every`, `device` and `env_id`: typed values of run.eval_every, run.device and env.id.
    """

    data = read_experiment_file(experiment_file) if experiment_file else {}
    return _from_data(data, experiment_file, preset, samples, seeds, variants, overrides, eval_every, device, env_id)


@dataclass(frozen=True)
class Study:
    """A study file: its experiment, once per environment where it lists `envs`, and its [play] table."""

    parts: tuple[tuple[str, Experiment], ...]  # (results folder under the study's, experiment); ("", ...) for one environment
    play: PlaySettings | None = None


def study_from(path: str | Path) -> Study:
    """A study file's experiment, exactly as `compare --experiment` builds it (once per environment of its `envs`,
    each with env.id set in its common settings), and its [play] table if it has one."""
    data = read_experiment_file(path, extra=STUDY_KEYS)
    play, envs, where = data.pop("play", None), data.pop("envs", None), f"experiment file {path}"
    play = None if play is None else play_settings(play, where)
    if envs is None:
        return Study((("", _from_data(data, path)),), play)
    parts = []
    for env_id in study_envs(envs, where):
        common = data.get("common", {})
        tables = [common.get("env", {}) if isinstance(common, dict) else {}]
        tables += [table.get("env", {}) for table in (data.get("variants") or {}).values() if isinstance(table, dict)]
        if any(isinstance(table, dict) and "id" in table for table in tables):
            raise DqnlabError(f"{where}: envs sets env.id for each of its experiments; leave env.id out of [common] and the variants")
        with_env = {**data, "common": {**common, "env": {**common.get("env", {}), "id": env_id}}}
        parts.append((env_name(env_id), _from_data(with_env, path)))
    return Study(tuple(parts), play)


def _from_data(data: dict, experiment_file: str | Path | None, preset: str | None = None, samples: int | None = None,
               seeds: int | Sequence[int] | None = None, variants: Sequence[str] = (), overrides: Sequence[str] = (),
               eval_every: int | None = None, device: str | None = None, env_id: str | None = None) -> Experiment:  # fmt: skip
    common, where = data.get("common", {}), f"experiment file {experiment_file}"
    if not isinstance(common, dict):
        raise DqnlabError(f"{where}: common must be a table of tables such as [common.learner]; got {common!r}")
    for key, value in common.items():
        if isinstance(value, dict):
            continue
        if key == "agent":
            raise DqnlabError(f"{where}: [common] may not hold agent = {value!r}; each variant names its agent, e.g. [variants.slow] agent = \"naive\"")
        if key in ("preset", "samples", "seeds"):
            raise DqnlabError(f"{where}: [common] may not hold {key} = {value!r}; write {key} = ... at the top of the file, before any table")
        raise DqnlabError(f"{where}: [common] may hold only tables such as [common.learner]; got {key} = {value!r}")
    common = {section: dict(values) for section, values in common.items()}
    typed = (("run.device", device), ("run.eval_every", eval_every), ("env.id", env_id))
    options = {path: value for path, value in typed if value is not None}
    for path, value in check_given_once(overrides, options).items():
        section, _, key = path.partition(".")
        if section == "run" and key in EXPERIMENT_KEYS:  # Experiment.config would override it for every run
            raise DqnlabError(f"--set {path} does not apply to compare (the experiment sets it for every run); use {EXPERIMENT_KEYS[key]}")
        common.setdefault(section, {})[key] = value
    variant_tables = dict(parse_variant_option(text) for text in variants) if variants else data.get("variants")
    if variants and len(variant_tables) != len(variants):
        raise DqnlabError("--variant names must be unique")
    return build_experiment(
        preset_name=preset or data.get("preset"),
        samples=samples if samples is not None else data.get("samples"),
        seeds=seeds if seeds is not None else data.get("seeds"),
        variant_tables=variant_tables,
        common=common,
        source=f"experiment file {experiment_file}" if experiment_file else "compare",
    )
