"""Resolving a configuration: preset, agent, TOML file and `--set` overrides, every key and type checked."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Mapping

from dqnlab.config.schema import SECTIONS, Config, preset, validate, with_agent
from dqnlab.errors import DqnlabError


def resolve(
    preset_name: str | None = None,
    agent: str | None = None,
    config_file: str | Path | None = None,
    overrides: typing.Sequence[str] = (),
    settings: Mapping[str, Any] | None = None,
) -> Config:
    """Build a validated configuration from a preset, agent, TOML file, `--set` texts and typed `settings`.

    `settings` maps "section.key" to a value already typed (an option such as
    --seed 5 gives {"run.seed": 5}); it is applied last, type-checked, never
    turned back into text. `check_given_once` refuses a key given two values.
    """
    file_data: dict[str, Any] = {}
    if config_file is not None:
        file_data = read_toml(config_file)
    file_preset, file_agent = file_data.pop("preset", None), file_data.pop("agent", None)
    preset_name = str(preset_name or file_preset or "tutorial")
    agent = str(agent or file_agent or "replay")
    config = with_agent(preset(preset_name), agent)
    config = apply_sections(config, file_data, source=f"config file {config_file}")
    for text in overrides:
        config = apply_override(config, text)
    for path, value in (settings or {}).items():
        config = set_value(config, path, value)
    validate(config)
    return config


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """A TOML file's tables; one line naming `what` and the file when it is missing, not UTF-8 or not TOML."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise DqnlabError(f"{what} {path} does not exist") from None
    except UnicodeDecodeError:
        raise DqnlabError(f"{what} {path} is not UTF-8 text (a binary file?)") from None
    except tomllib.TOMLDecodeError as error:
        raise DqnlabError(f"{what} {path} is not valid TOML: {error}") from None
    except IsADirectoryError:
        raise DqnlabError(f"{what} {path} is a directory") from None


def apply_sections(config: Config, data: Mapping[str, Any], source: str) -> Config:
    """Override sections of `config` with a nested mapping such as a parsed TOML file."""
    for section, values in data.items():
        if section not in SECTIONS:
            allowed = ", ".join(["preset", "agent", *SECTIONS])
            raise DqnlabError(f"{source}: unknown key {section!r}; allowed top-level keys: {allowed}")
        if not isinstance(values, Mapping):
            raise DqnlabError(f"{source}: {section!r} must be a table of keys, e.g. [{section}]")
        for key, value in values.items():
            config = set_value(config, f"{section}.{key}", value)
    return config


def apply_override(config: Config, text: str) -> Config:
    """Apply one `section.key=value` override; the value is a TOML literal."""
    return set_value(config, *parse_override(text))


def parse_override(text: str) -> tuple[str, Any]:
    """Split `section.key=value` into the key's path and its value, read as a TOML literal."""
    path, sep, raw = text.partition("=")
    if not sep or "." not in path:
        raise DqnlabError(f"override {text!r} must look like section.key=value, e.g. learner.lr=1e-4")
    path = path.strip()
    section, _, key = path.partition(".")
    return path, _parse_literal(raw.strip(), _field_type(section, key), path)


SHORTCUTS = {"env.id": "--env", "run.samples": "--samples", "run.seed": "--seed", "run.device": "--device",
             "run.checkpoint_every": "--checkpoint-every", "run.eval_every": "--eval-every"}  # options that set one key


def check_given_once(overrides: typing.Sequence[str], settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Refuse a command line that gives one key two different values (as `--set`s or their shortcut options).

    `resolve` applies overrides in order, so the last would silently win.
    Returns every key given, as "section.key" -> its value as given (a TOML literal's value, or the option's).
    """
    seen: dict[str, tuple[Any, str, Any]] = {}  # path -> (checked value, text, value as given)
    given = [(*parse_override(text), text.partition("=")[2].strip()) for text in overrides]
    given += [(path, value, str(value)) for path, value in (settings or {}).items()]
    for path, value, raw in given:
        section, _, key = path.partition(".")
        checked = _check_type(value, _field_type(section, key), path)
        if path in seen and seen[path][0] != checked:
            option = SHORTCUTS.get(path)
            same = f" ({option} sets the same key as --set {path})" if option else ""
            raise DqnlabError(f"{path} is given two different values, {seen[path][1]} and {raw}; give it once{same}")
        seen[path] = (checked, raw, value)
    return {path: value for path, (_, _, value) in seen.items()}


def _parse_literal(raw: str, expected: Any, path: str) -> Any:
    if raw.lower() in ("none", "null") and _is_optional(expected):
        return None
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        if _base_type(expected) is str:  # a bare word for a string field: env.id=Acrobot-v1
            return raw
        raise DqnlabError(f"{path}={raw!r} is not a TOML literal (e.g. 64, 1e-4, true, \"semi\", [64, 64])") from None


def set_value(config: Config, path: str, value: Any) -> Config:
    """Return `config` with `section.key` set to `value`, type-checked."""
    section, _, key = path.partition(".")
    expected = _field_type(section, key)
    checked = _check_type(value, expected, path)
    sub = dataclasses.replace(getattr(config, section), **{key: checked})
    return dataclasses.replace(config, **{section: sub})


def _field_type(section: str, key: str) -> Any:
    if section not in SECTIONS:
        raise DqnlabError(f"unknown section {section!r}; sections are: {', '.join(SECTIONS)}")
    hints = typing.get_type_hints(SECTIONS[section])
    if key not in hints:
        raise DqnlabError(f"unknown key {section}.{key}; {section} keys are: {', '.join(hints)}")
    return hints[key]


def _is_optional(expected: Any) -> bool:
    return isinstance(expected, types.UnionType) and type(None) in typing.get_args(expected)


def _base_type(expected: Any) -> Any:
    if _is_optional(expected):
        return next(arg for arg in typing.get_args(expected) if arg is not type(None))
    return expected


def _check_type(value: Any, expected: Any, path: str) -> Any:
    if value is None and _is_optional(expected):
        return None
    base = _base_type(expected)
    if typing.get_origin(base) is tuple:
        if typing.get_args(base)[0] is float:  # a list of numbers, e.g. env.targets
            if isinstance(value, (list, tuple)) and all(_is_int(v) or isinstance(v, float) for v in value):
                return tuple(float(v) for v in value)
            raise DqnlabError(f"{path} must be a list of numbers, e.g. [-100]; got {value!r}")
        if isinstance(value, (list, tuple)) and all(_is_int(v) for v in value):
            return tuple(int(v) for v in value)
        raise DqnlabError(f"{path} must be a list of integers, e.g. [64, 64]; got {value!r}")
    if base is bool and isinstance(value, bool):
        return value
    if base is int and _is_int(value):
        return int(value)
    if base is float and (_is_int(value) or isinstance(value, float)):
        return float(value)
    if base is str and isinstance(value, str):
        return value
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[base]
    suffix = " (or none)" if _is_optional(expected) else ""
    raise DqnlabError(f"{path} must be {kind}{suffix}; got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def config_from_dict(data: Mapping[str, Any], source: str = "config") -> Config:
    """Rebuild a Config from `config_to_dict`'s output, checking every key and type."""
    data = dict(data)
    base = Config(preset=str(data.pop("preset", "tutorial")), agent=str(data.pop("agent", "replay")))
    config = apply_sections(base, data, source=source)
    validate(config)
    return config
