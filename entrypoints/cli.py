"""``opusclip``: one console command for every driver (serve, worker, migrate, clip, transcribe, train,
eval, token)."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import sys
from collections.abc import Sequence
from typing import NoReturn

from application.config import AppConfig, ConfigError
from entrypoints import token_command, train_command, transcribe_command
from entrypoints.console import fail


class _Parser(argparse.ArgumentParser):
    """Usage errors as every other error: one line (with where to find help) and exit status 2. Subcommand
    parsers are made of the same class."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("opusclip").strip()
        where = f"{command}: " if command else ""
        sys.exit(fail(f"{where}{message} (see {self.prog} --help)"))


def _parser() -> argparse.ArgumentParser:
    # Typed as the base class, so the command modules' add_parser(s) take its subparsers (of _Parser, as
    # argparse makes them of the parent's class).
    parser: argparse.ArgumentParser = _Parser(
        prog="opusclip", description="Long videos in, ranked highlight clips out."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP API under uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)

    worker = commands.add_parser("worker", help="run queued jobs (any number of workers, any machines)")
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="jobs at once in this process (default: WORKER_CONCURRENCY)",
    )
    worker.add_argument("--metrics-host", default="0.0.0.0", help="address of /health and /metrics")
    worker.add_argument("--metrics-port", type=int, default=9100, help="port of /health and /metrics")

    commands.add_parser(
        "migrate", help="apply the database migrations, the job queue's included (DATABASE_URL)"
    )

    clip = commands.add_parser("clip", help="turn a video file into ranked clips, in-process, no servers")
    clip.add_argument("file")
    clip.add_argument("--out", default=None, help="output folder (default: ./<file name>_clips)")
    clip.add_argument("--max-clips", type=int, default=5)
    clip.add_argument("--min", dest="min_seconds", type=float, default=15.0, help="shortest clip, seconds")
    clip.add_argument("--max", dest="max_seconds", type=float, default=60.0, help="longest clip, seconds")
    clip.add_argument("--aspect", default="source", help="source, 9:16 or 1:1")
    clip.add_argument("--captions", default="srt,vtt", help="comma-separated: srt, vtt (empty for none)")
    clip.add_argument(
        "--gap", dest="gap_seconds", type=float, default=10.0, help="least seconds between two clips"
    )
    clip.add_argument("--burn-captions", action="store_true", help="draw the captions into the picture")
    clip.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    clip.add_argument("--verbose", action="store_true", help="log to stderr at LOG_LEVEL")

    transcribe_command.add_parser(commands)
    train_command.add_parsers(commands)
    token_command.add_parser(commands)
    return parser


_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _few_malloc_arenas() -> None:
    """For the one-job commands, before their threads start: glibc gives each allocating thread its own
    malloc arena and keeps what was freed there, so decoder, torch and recogniser threads each held their
    high-water mark (a 10-minute clip run peaked at ~1050 MiB with the default, ~930 MiB with two)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: its allocator has its own policy
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, 2)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("clip", "transcribe"):
        _few_malloc_arenas()
    try:
        config = AppConfig.from_env()
    except ConfigError as error:
        return fail(f"configuration error: {error}")

    if args.command == "serve":
        from entrypoints.serve import serve

        return serve(config, host=args.host, port=args.port, workers=args.workers)
    if args.command == "worker":
        from entrypoints.worker import run_worker_command

        return run_worker_command(config, args)
    if args.command == "migrate":
        from entrypoints.serve import migrate

        return migrate(config)
    if args.command == "clip":
        from entrypoints.clip_command import run_clip

        return run_clip(config, args)
    if args.command == "train":
        return train_command.run_train(config, args)
    if args.command == "eval":
        return train_command.run_eval(config, args)
    if args.command == "transcribe":
        return transcribe_command.run(config, args)
    if args.command == "token":
        return token_command.run(config, args)
    return fail(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
