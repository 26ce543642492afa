"""The README's commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [block.strip() for block in blocks[:2]]


def test_ci_runs_the_readme_test_command():
    main_job, test_command = readme_commands()
    assert "pytest" in test_command and "torch==2.13.0" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_install_commands_pin_torch():
    for command in readme_commands():
        assert "pip install torch==2.13.0" in command


# ---------------------------------------------------------------- the documentation site

import dataclasses  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402

from dqnlab.config import schema  # noqa: E402

DOCS = ROOT / "docs"


def nav_pages() -> list[str]:
    """The Markdown files mkdocs.yml's nav lists (read without YAML: the test extra does not install it)."""
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text[text.index("\nnav:") :]
    return re.findall(r"^\s*-\s+(?:[^\n:]+:\s+)?([\w./-]+\.md)\s*$", nav, flags=re.M)


def load(path: Path):
    """A script of docs/ as a module (registered, as a dataclass in it needs)."""
    name = f"docs_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) < 200


def test_every_nav_page_exists():
    pages = nav_pages()
    assert len(pages) >= 15 and pages[0] == "index.md" and "configuration.md" in pages
    for page in pages:
        assert (DOCS / page).is_file(), page


def test_readme_links_into_the_docs_exist():
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)\s]*)?\)", (ROOT / "README.md").read_text())
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link).is_file(), link


def test_pictures_on_the_pages_are_the_ones_the_script_makes():
    made = set(load(DOCS / "make_pictures.py").PICTURES.values())
    texts = [(ROOT / "README.md").read_text()] + [(DOCS / page).read_text() for page in nav_pages()]
    shown = {name for text in texts for name in re.findall(r"\]\((?:\.\./|docs/)*assets/([\w.-]+)\)", text)}
    assert shown and shown <= made, shown - made
    assert sum((DOCS / "assets" / name).stat().st_size for name in made) < 3_000_000


def test_the_configuration_reference_names_every_field():
    hook = load(DOCS / "hooks" / "config_reference.py")
    reference = hook.reference_markdown()
    rows = {line.split("|")[1].strip().strip("`"): line for line in reference.splitlines()[2:]}
    expected = [field.name for field in dataclasses.fields(schema.Config) if field.name not in schema.SECTIONS]
    for section, cls in schema.SECTIONS.items():
        expected += [f"{section}.{field.name}" for field in dataclasses.fields(cls)]
    assert list(rows) == expected  # every field, in the schema's order, once
    assert "| `float` | `0.0001` | must be > 0; must be finite | Adam's learning rate" in rows["learner.lr"]
    assert "must be one of full, semi" in rows["learner.td_gradient"]
    assert "`[1024, 512]`" in rows["network.hidden"] and "the tutorial's network" in rows["network.hidden"]
    assert "`none`" in rows["replay.capacity"] and "never evicts" in rows["replay.capacity"]
    presets = hook.presets_markdown()
    for name in schema.PRESETS:
        assert f"| `{name}` |" in presets
    assert '`"MinAtar/Breakout-v0"`' in presets and "`replay.capacity = 1`" in presets
    page = (DOCS / "configuration.md").read_text()
    assert all(marker in page for marker in hook.MARKERS)
