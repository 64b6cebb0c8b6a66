"""``make demo``: generate a two-minute sample talk, then clip it with the real stack, no servers."""

from __future__ import annotations

import sys
from pathlib import Path

from entrypoints.cli import main as opusclip

DEMO_DIR = Path("demo")


def run() -> int:
    from adapters.media.synthetic import make_sample

    DEMO_DIR.mkdir(exist_ok=True)
    sample = DEMO_DIR / "sample.mp4"
    if not sample.exists():
        print(
            f"demo: writing a 2-minute sample video (espeak-ng speech, scene changes) to {sample}",
            file=sys.stderr,
        )
        partial = sample.with_suffix(".partial.mp4")
        make_sample(partial, seconds=120)
        partial.replace(sample)
    out = DEMO_DIR / "clips"
    code = opusclip(
        ["clip", str(sample), "--out", str(out), "--max-clips", "3", "--aspect", "9:16", "--burn-captions"]
    )
    if code == 0:
        print(f"\ndemo: done. Play {out}/clip_01.mp4; spans, scores and words are in {out}/clips.json")
    return code


if __name__ == "__main__":
    sys.exit(run())
