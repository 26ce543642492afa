"""MkDocs hook: the configuration reference, generated from `dqnlab.config.schema` at build time.

A page that holds one of these markers gets it replaced by a table built
from the code, so the reference cannot drift from it:

- `<!-- dqnlab:config-reference -->`: every key of every section (the
  dataclasses' fields): its type, its default, the values `validate`
  allows, and the source comments written beside the field;
- `<!-- dqnlab:presets -->`: each preset's description and every key on
  which the presets differ, and what the `naive` agent changes;
- `<!-- dqnlab:shortcuts -->`: the options that set one key.

The descriptions are the comments in schema.py (above a field, and at the
end of its line), read with `ast` and `tokenize`; the allowed values are the
rules of `validate`, read from its `checks` list.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import tokenize
import typing
from typing import Any

from dqnlab.config import resolving, schema

MARKERS = {
    "<!-- dqnlab:config-reference -->": lambda: reference_markdown(),
    "<!-- dqnlab:presets -->": lambda: presets_markdown(),
    "<!-- dqnlab:shortcuts -->": lambda: shortcuts_markdown(),
}

# The two top-level keys of Config are not sections and carry no comment in schema.py.
TOP_LEVEL = {
    "preset": ("the preset the configuration starts from", lambda: "one of " + ", ".join(schema.PRESETS)),
    "agent": ("`naive`: the preset's replay settings with a memory of one transition, batches of one, "
              "learning from the first step (`with_agent`); `replay`: the preset's replay settings as they are",
              lambda: "one of " + ", ".join(schema.AGENTS)),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Row:
    key: str  # "section.key", or "preset" / "agent"
    type: str
    default: str  # a TOML literal; "none" for an absent optional key
    allowed: str
    description: str


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    for marker, build in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, build())
    return markdown


# ---------------------------------------------------------------- reading the schema


def rows() -> list[Row]:
    """One row per field: Config's top-level keys, then every section's fields in order."""
    comments = field_comments()
    rules = validate_rules()
    found = []
    hints = typing.get_type_hints(schema.Config)
    for field in dataclasses.fields(schema.Config):
        if field.name in TOP_LEVEL:
            description, allowed = TOP_LEVEL[field.name]
            found.append(Row(field.name, type_name(hints[field.name]), toml(default_of(field)), allowed(), description))
    for section, cls in schema.SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            key = f"{section}.{field.name}"
            found.append(Row(key, type_name(hints[field.name]), toml(default_of(field)), "; ".join(rules.get(key, [])),
                             comments.get((cls.__name__, field.name), "")))  # fmt: skip
    return found


def default_of(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]


def type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint)


def toml(value: Any) -> str:
    """A default as it is written in a TOML file or a --set (none: the key absent)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return repr(value)


def field_comments() -> dict[tuple[str, str], str]:
    """(class name, field name) -> the comments above the field and at the end of its line, as one text."""
    source = inspect.getsource(schema)
    lines = source.splitlines()
    inline = {}  # line number -> the comment ending a line of code
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and lines[token.start[0] - 1][: token.start[1]].strip():
            inline[token.start[0]] = token.string
    found = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
                continue
            above = []
            number = statement.lineno - 1  # the line above, 1-based
            while number >= 1 and lines[number - 1].strip().startswith("#"):
                above.insert(0, lines[number - 1].strip())
                number -= 1
            texts = [*above, inline.get(statement.end_lineno or statement.lineno, "")]
            text = " ".join(t.lstrip("#").strip() for t in texts if t)
            found[(node.name, statement.target.id)] = text
    return found


def validate_rules() -> dict[str, list[str]]:
    """'section.key' -> the rules `validate` holds it to, in order, each once (f-strings evaluated in schema)."""
    tree = ast.parse(inspect.getsource(schema.validate))
    checks = next(node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "checks" for t in node.targets))  # fmt: skip
    rules: dict[str, list[str]] = {}
    for check in checks.elts:
        key, rule = check.elts[0].value, check.elts[2]
        text = eval(compile(ast.Expression(rule), "schema.validate", "eval"), vars(schema))  # constants only
        if text not in rules.setdefault(key, []):
            rules[key].append(text)
    return rules


# ---------------------------------------------------------------- markdown


def cell(text: str) -> str:
    """Text safe in a Markdown table cell: no pipes, no stray HTML or emphasis."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("*", "\\*")


def reference_markdown() -> str:
    lines = ["| key | type | default | allowed | what it is |", "|---|---|---|---|---|"]
    for row in rows():
        lines.append(f"| `{row.key}` | `{row.type}` | `{row.default}` | {cell(row.allowed)} | {cell(row.description)} |")
    return "\n".join(lines) + "\n"


def flat(config: schema.Config) -> dict[str, Any]:
    values = {}
    for section in schema.SECTIONS:
        for key, value in dataclasses.asdict(getattr(config, section)).items():
            values[f"{section}.{key}"] = tuple(value) if isinstance(value, list) else value
    return values


def presets_markdown() -> str:
    names = list(schema.PRESETS)
    configs = {name: flat(schema.preset(name)) for name in names}
    lines = ["| preset | what it is |", "|---|---|"]
    lines += [f"| `{name}` | {cell(schema.PRESETS[name][0])} |" for name in names]
    lines += ["", "Every key on which the presets differ (each preset with the `replay` agent):", ""]
    lines += ["| key | " + " | ".join(f"`{name}`" for name in names) + " |", "|---|" + "---|" * len(names)]
    base = configs[names[0]]
    for key in base:
        if any(configs[name][key] != base[key] for name in names):
            lines.append(f"| `{key}` | " + " | ".join(f"`{toml(configs[name][key])}`" for name in names) + " |")
    changed: dict[str, Any] = {}  # what the naive agent changes on any of the presets
    for name in names:
        naive = flat(schema.with_agent(schema.preset(name), "naive"))
        changed.update({key: value for key, value in naive.items() if value != configs[name][key]})
    settings = ", ".join(f"`{key} = {toml(value)}`" for key, value in changed.items())
    lines += ["", f"The `naive` agent changes these keys of the presets: {settings}."]
    return "\n".join(lines) + "\n"


def shortcuts_markdown() -> str:
    lines = ["| option | sets |", "|---|---|"]
    lines += [f"| `{option}` | `{key}` |" for key, option in resolving.SHORTCUTS.items()]
    return "\n".join(lines) + "\n"
