"""What an experiment is: variants x seeds, one preset, one sample budget.

A variant is an agent (`naive` or `replay`) plus settings that differ from
the preset; seed k gives every variant the same initial weights (for equal
network shapes), the same per-episode reset seeds and the same evaluation
starts, because those streams depend on the seed alone (`seeding.py`). Only
the variant's settings differ. The experiment sets every run's `run.samples`
and `run.seed`, so common settings and variants may not (they are refused,
not ignored), and it has at most `MAX_SEEDS` seeds.

Variants come from repeated `--variant NAME:key=value,...` options or from a
TOML experiment file:

    preset = "quick"
    samples = 20000
    seeds = 20
    [common.learner]              # settings shared by every variant
    lr = 1e-3
    [variants.naive]
    agent = "naive"
    [variants.replay16]
    agent = "replay"
    replay = { batch_size = 16, warmup = 16 }

A study file (`studies/NAME.toml`, run by `dqnlab study NAME`) is an
experiment file that opens with `# question` comment lines and may add a
`[play]` table: after the sweep, the runs' final networks play greedily
(`dqnlab.deploy`); and `envs = [...]`: the experiment runs once per
environment (each its own results directory, its measures following that
environment's profile: an experiment has one environment). Plain
experiment files refuse both.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from dqnlab.config import (
    AGENTS,
    SECTIONS,
    Config,
    EnvConfig,
    apply_sections,
    parse_override,
    preset,
    read_toml,
    validate,
    with_agent,
)
from dqnlab.errors import DqnlabError

Settings = dict[str, dict[str, Any]]  # section -> key -> value, as in a TOML file
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_SEEDS = 10_000  # seeds per experiment: each is one run of every variant, and all are planned at once
SEED_BOUND = 2**63  # run.seed must be below this (config.validate)
# Keys the experiment sets for every run (`Experiment.config` applies them last), and where to set them instead.
EXPERIMENT_KEYS = {
    "samples": "--samples N (or samples = N in the experiment file)",
    "seed": "--seeds N with --first-seed K (or seeds = [...] in the experiment file)",
}


@dataclass(frozen=True)
class Variant:
    name: str
    agent: str
    settings: Settings = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    preset: str
    samples: int
    seeds: tuple[int, ...]
    variants: tuple[Variant, ...]
    common: Settings = field(default_factory=dict)

    def config(self, variant: Variant, seed: int) -> Config:
        """The resolved configuration of one run."""
        config = with_agent(preset(self.preset), variant.agent)
        config = apply_sections(config, self.common, source="the experiment's common settings")
        config = apply_sections(config, variant.settings, source=f"variant {variant.name!r}")
        run = {"samples": self.samples, "seed": seed}
        config = apply_sections(config, {"run": run}, source="the experiment")
        validate(config)
        return config

    def runs(self) -> list[tuple[Variant, int]]:
        return [(variant, seed) for variant in self.variants for seed in self.seeds]

    def env(self) -> EnvConfig:
        """The environment every variant trains on (`build_experiment` refuses variants on several)."""
        return self.config(self.variants[0], self.seeds[0]).env

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "samples": self.samples,
            "seeds": list(self.seeds),
            "common": self.common,
            "variants": {v.name: {"agent": v.agent, **v.settings} for v in self.variants},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "experiment") -> "Experiment":
        return build_experiment(
            preset_name=data.get("preset"),
            samples=data.get("samples"),
            seeds=data.get("seeds"),
            variant_tables=data.get("variants"),
            common=data.get("common"),
            source=source,
        )


# ---------------------------------------------------------------- building


def build_experiment(
    preset_name: str | None = None,
    samples: int | None = None,
    seeds: int | list[int] | range | None = None,
    variant_tables: Mapping[str, Any] | None = None,
    common: Mapping[str, Any] | None = None,
    source: str = "experiment",
) -> Experiment:
    """Check and assemble an experiment; every configuration is resolved once to catch bad keys."""
    preset_name = str(preset_name or "tutorial")
    seed_list = _seeds(seeds if seeds is not None else 10, source)
    variant_tables = variant_tables if variant_tables is not None else {"naive": {"agent": "naive"}, "replay": {"agent": "replay"}}
    if not isinstance(variant_tables, Mapping) or not variant_tables:
        raise DqnlabError(f"{source}: needs at least one variant")
    variants = tuple(_variant(name, table, source) for name, table in variant_tables.items())
    base = preset(preset_name)
    experiment = Experiment(
        preset=preset_name,
        samples=_positive_int(samples if samples is not None else base.run.samples, "samples", source),
        seeds=seed_list,
        variants=variants,
        common=_settings(common or {}, f"{source}: common settings"),
    )
    envs = {variant.name: experiment.config(variant, seed_list[0]).env.id for variant in variants}  # each resolved once:
    if len(set(envs.values())) > 1:  # unknown keys and bad values fail here, before any run
        listed = ", ".join(f"{name} on {env_id}" for name, env_id in envs.items())
        raise DqnlabError(f"{source}: every variant must train on one environment, as the measures and the report "
                          f"follow its profile ({listed}); run one experiment per environment")  # fmt: skip
    return experiment


def _variant(name: str, table: Any, source: str) -> Variant:
    if not NAME.fullmatch(str(name)):
        raise DqnlabError(f"{source}: variant name {name!r} must be letters, digits, '_', '-' or '.'")
    if not isinstance(table, Mapping):
        raise DqnlabError(f"{source}: variant {name!r} must be a table of settings")
    table = dict(table)
    agent = table.pop("agent", name if name in AGENTS else "replay")
    if agent not in AGENTS:
        raise DqnlabError(f"{source}: variant {name!r} has agent {agent!r}; choose one of: {', '.join(AGENTS)}")
    return Variant(str(name), str(agent), _settings(table, f"{source}: variant {name!r}", also=("agent",)))


def _settings(data: Mapping[str, Any], source: str, also: tuple[str, ...] = ()) -> Settings:
    if not isinstance(data, Mapping):
        raise DqnlabError(f"{source} must be a table of tables such as [common.learner]; got {data!r}")
    settings: Settings = {}
    for section, values in data.items():
        if section not in SECTIONS:
            raise DqnlabError(f"{source}: unknown key {section!r}; allowed: {', '.join([*also, *SECTIONS])}")
        if not isinstance(values, Mapping):
            raise DqnlabError(f"{source}: {section!r} must be a table of keys, e.g. {section} = {{ key = value }}")
        settings[str(section)] = dict(values)
    for key, instead in EXPERIMENT_KEYS.items():
        if key in settings.get("run", {}):
            raise DqnlabError(f"{source} may not set run.{key} (the experiment sets it for every run); use {instead}")
    apply_sections(Config(), settings, source=source)  # names and types checked here
    return settings


def _seeds(seeds: Any, source: str) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise DqnlabError(f"{source}: seeds must be a count or a list of seeds; got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise DqnlabError(f"{source}: the number of seeds must be >= 1; got {seeds}")
        seeds = range(seeds)
    if isinstance(seeds, range) and seeds.step == 1 and seeds.start >= 0:  # --seeds N --first-seed K: checked before it is built
        _check_seed_count(len(seeds), source)
        if seeds and seeds[-1] >= SEED_BOUND:
            raise DqnlabError(f"{source}: seeds must be below 2**63 (run.seed's bound); got seeds up to {seeds[-1]:,}")
        seeds = tuple(seeds)
    if isinstance(seeds, (list, tuple)) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        _check_seed_count(len(seeds), source)
        if max(seeds) >= SEED_BOUND:
            raise DqnlabError(f"{source}: seeds must be below 2**63 (run.seed's bound); got seeds up to {max(seeds):,}")
        if len(set(seeds)) != len(seeds):
            raise DqnlabError(f"{source}: seeds must not repeat; got {list(seeds)}")
        return tuple(seeds)
    raise DqnlabError(f"{source}: seeds must be a count >= 1 or a non-empty list of seeds >= 0; got {seeds!r}")


def _check_seed_count(count: int, source: str) -> None:
    if count > MAX_SEEDS:
        raise DqnlabError(f"{source}: an experiment may have at most {MAX_SEEDS:,} seeds (each is one run of every variant); got {count:,}")


def _positive_int(value: Any, name: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DqnlabError(f"{source}: {name} must be an integer >= 1; got {value!r}")
    return value


# ---------------------------------------------------------------- parsing


def parse_variant_option(text: str) -> tuple[str, dict[str, Any]]:
    """`NAME:key=value,key=value` -> (NAME, {"agent": ..., section: {key: value}}).

    Commas inside brackets or quotes belong to the value: `big:network.hidden=[256, 256]`.
    """
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise DqnlabError(f"--variant {text!r} must look like NAME:section.key=value,... e.g. replay16:replay.batch_size=16")
    table: dict[str, Any] = {}
    for item in _split_items(rest) if sep else []:
        key, eq, raw = item.partition("=")
        if key.strip() == "agent":
            table["agent"] = raw.strip().strip("\"'")
            continue
        if not eq:
            raise DqnlabError(f"--variant {name}: {item!r} must look like section.key=value")
        path, value = parse_override(item)
        section, _, key = path.partition(".")
        table.setdefault(section, {})[key] = value
    return name, table


def _split_items(text: str) -> list[str]:
    items, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        items.append("".join(current).strip())
    return [item for item in items if item]


STUDY_KEYS = ("play", "envs")  # what a study file may hold beyond an experiment file's keys


def read_experiment_file(path: str | Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The file's tables, top-level keys checked; `extra`: keys allowed beyond an experiment's (a study's STUDY_KEYS)."""
    data = read_toml(path, "experiment file")
    allowed = {"preset", "samples", "seeds", "common", "variants", *extra}
    unknown = sorted(set(data) - allowed)
    if unknown:
        if unknown[0] in STUDY_KEYS:
            raise DqnlabError(f"experiment file {path}: {unknown[0]} belongs to study files; run it with dqnlab study {path}")
        raise DqnlabError(f"experiment file {path}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return data


def study_envs(value: Any, source: str) -> tuple[str, ...]:
    """A study's `envs`: a non-empty list of distinct Gymnasium ids."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value):
        raise DqnlabError(f"{source}: envs must be a list of distinct environment ids, e.g. "
                          f"[\"MinAtar/Breakout-v0\", \"MinAtar/SpaceInvaders-v0\"]; got {value!r}")  # fmt: skip
    names = [env_name(v) for v in value]
    if len(set(names)) != len(names):
        raise DqnlabError(f"{source}: envs {value!r} would share a results folder ({', '.join(names)}); give ids whose last parts differ")
    return tuple(value)


def env_name(env_id: str) -> str:
    """The results folder of one environment of a study: its id's last part ('MinAtar/Breakout-v0' -> 'Breakout-v0')."""
    return env_id.rsplit("/", 1)[-1]


def experiment_json(experiment: Experiment) -> str:
    return json.dumps(experiment.to_dict(), indent=2) + "\n"


def timing_config(experiment: Experiment, variant_name: str) -> Config:
    """The variant's first seed without evaluations or checkpoints: training and nothing else."""
    variant = next(v for v in experiment.variants if v.name == variant_name)
    config = experiment.config(variant, experiment.seeds[0])
    return dataclasses.replace(config, run=dataclasses.replace(config.run, eval_every=None, checkpoint_every=None))


# ---------------------------------------------------------------- studies

BACKENDS = ("local", "population", "ray")  # what a sweep runs on (experiments/backends/); free of torch for --help
STUDIES = Path("studies")  # where `dqnlab study NAME` looks, from the current directory


@dataclass(frozen=True)
class PlaySettings:
    """A study's [play] table: how the runs' final networks are played after the sweep (`dqnlab.deploy`)."""

    episodes: int = 10  # greedy episodes per run, as `dqnlab play`
    max_steps: int = 10_000  # step cap per episode, as `dqnlab play`: a good agent on unwrapped CartPole never stops
    handset: bool = False  # also play the hand-wired network, as a yardstick


def play_settings(table: Any, source: str) -> PlaySettings:
    """A study's [play] table, checked."""
    keys = [item.name for item in dataclasses.fields(PlaySettings)]
    if not isinstance(table, Mapping):
        raise DqnlabError(f"{source}: play must be a table [play] with keys {', '.join(keys)}; got {table!r}")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise DqnlabError(f"{source}: [play] has unknown key {unknown[0]!r}; allowed: {', '.join(keys)}")
    for key in ("episodes", "max_steps"):
        if key in table:
            _positive_int(table[key], f"play.{key}", source)
    if not isinstance(table.get("handset", False), bool):
        raise DqnlabError(f"{source}: play.handset must be true or false; got {table['handset']!r}")
    return PlaySettings(**table)


def study_files(folder: Path = STUDIES) -> dict[str, Path]:
    """NAME -> path of every studies/NAME.toml, by name."""
    return {path.stem: path for path in sorted(folder.glob("*.toml")) if path.is_file()} if folder.is_dir() else {}


def study_question(path: Path) -> str:
    """The file's first comment line, without its '#': the question the study asks."""
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            if line.lstrip().startswith("#"):
                return line.strip().lstrip("#").strip()
    return ""


def find_study(name: str, folder: Path = STUDIES) -> Path:
    """The study file NAME names: studies/NAME.toml, or NAME itself when it is a path to a .toml file."""
    path = Path(name)
    if name.endswith(".toml") or len(path.parts) > 1:
        if not path.is_file():
            raise DqnlabError(f"study file {name} does not exist")
        return path
    found = study_files(folder)
    if name in found:
        return found[name]
    where = f"studies in {folder}/: {', '.join(found)}" if found else f"no study files in {folder}/ (run from the folder that holds it)"
    raise DqnlabError(f"unknown study {name!r}; {where}")
