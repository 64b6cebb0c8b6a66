"""How every ``opusclip`` command reports a problem: one line on stderr, and an exit status."""

from __future__ import annotations

import sys

EXIT_INTERNAL = 1
EXIT_USAGE = 2  # bad input or configuration: the user can fix it


def fail(message: str, code: int = EXIT_USAGE) -> int:
    # Plain print, whitespace folded: one line, never wrapped to the terminal's width as a rich console would.
    print(f"opusclip: {' '.join(message.split())}", file=sys.stderr)
    return code
