"""Running the CLI in tests, and checking a refusal: exit code 2 and exactly one `error:` line."""

from __future__ import annotations

from click.testing import CliRunner

from dqnlab.cli import cli

UNSAFE_ADVICE = ("weights_only=False", "allow_pickle=True", "Traceback")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def refused(result, *fragments: str) -> str:
    """The one error line of a refused command, checked: exit 2, one line, no unsafe advice, every fragment named."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not any(text in result.output for text in UNSAFE_ADVICE), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
