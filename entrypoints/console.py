"""How every ``opusclip`` command reports a problem: one line on stderr, and an exit status."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress

EXIT_INTERNAL = 1
EXIT_USAGE = 2  # bad input or configuration: the user can fix it


def fail(message: str, code: int = EXIT_USAGE) -> int:
    # Plain print, whitespace folded: one line, never wrapped to the terminal's width as a rich console would.
    print(f"opusclip: {' '.join(message.split())}", file=sys.stderr)
    return code


def progress_bars(*, show: bool) -> Progress:
    """The commands' progress bars on stderr (stdout keeps their results): a line a stage, its percentage
    and the time it took. Hidden with ``show=False`` (--no-progress, or no terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show,
    )
