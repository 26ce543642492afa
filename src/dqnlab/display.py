"""Terminal output for long commands: a live progress display with plain lines above it.

Off a terminal (a pipe, a log file, CI) the bars are off and only the lines
are printed, so logs stay readable.
"""

from __future__ import annotations

from typing import Any


class LiveDisplay:
    """A rich Progress on stdout; `line` prints above it unless quiet."""

    def __init__(self, *columns: Any, quiet: bool = False, transient: bool = False) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self.quiet = quiet
        self.console = Console(highlight=False, markup=False, soft_wrap=True)
        self.progress = Progress(
            *columns, console=self.console, disable=quiet or not self.console.is_terminal, transient=transient
        )

    def __enter__(self) -> "LiveDisplay":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.progress.stop()

    def line(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)
