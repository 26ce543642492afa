"""The `dqnlab` command: options become values and library calls (`dqnlab.api`); only this package prints.

Defining the commands imports no heavy library: `dqnlab --help` and `dqnlab VERB --help` load neither torch,
matplotlib nor Gymnasium (tests/test_cli_startup.py). A command imports `dqnlab.api` and the rest when it runs.

User mistakes (DqnlabError, click usage errors) print one line and exit 2;
see docs/troubleshooting.md ("When things go wrong") for every exit code.
"""

from __future__ import annotations

import sys

import click

from dqnlab import __version__
from dqnlab.errors import DqnlabError


class UserError(click.ClickException):
    """A DqnlabError on its way out: one line on stderr, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


class _Group(click.Group):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """As click's, but a usage error is one line too: `error: ... (see dqnlab CMD --help)`, exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as error:  # `dqnlab` alone: the help, as click shows it
            error.show()
            sys.exit(error.exit_code)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else "dqnlab"
            click.echo(f"error: {error.format_message()} (see {command} --help)", err=True)
            sys.exit(2)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:  # Ctrl-C before a command began, or at a prompt
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DqnlabError as error:
            raise UserError(str(error)) from None
        except OSError as error:  # a disk that refused a write outside dqnlab's own writers (rundir/disk.py)
            from dqnlab.rundir.disk import disk_error, is_disk_error

            if is_disk_error(error):
                raise UserError(str(disk_error(error))) from None
            raise
        except KeyboardInterrupt:  # files being written are whole or absent (rundir/disk.py): say so, as a shell expects
            click.echo("interrupted: every file written so far is whole; nothing half-written was kept", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dqnlab")
def cli() -> None:
    """dqnlab: deep Q-learning with experience replay, as a lab.

    Train the tutorial's naive and replay agents on CartPole (or any Gymnasium
    environment with discrete actions), then watch them play.
    """


from dqnlab.cli import compare, inspect, run, study  # noqa: E402  (each module adds its commands to `cli`)

LEFT_OUT_EXIT = compare.LEFT_OUT_EXIT


def main() -> None:
    cli.main(prog_name="dqnlab")


__all__ = ["cli", "main", "LEFT_OUT_EXIT", "UserError", "compare", "inspect", "run", "study"]
