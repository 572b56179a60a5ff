"""LipForensics Live: detect lip-sync and face-swap forgeries in video files and live streams.

The command line (``lipforensics-live``, or ``python run_stream.py`` in a checkout): each
sub-command lives in ``commands/<name>.py``; this module only dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from errors import LipForensicsError, LipForensicsWarning
from errors.text import printable
from stream.health.memory import limit_malloc_arenas

#: sub-command name -> module under ``commands/``; the order is the order of ``--help``.
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "scan": "scan",
    "run": "run",
    "crops": "crops",
    "build-engine": "build_engine",
    "export-triton": "export_triton",
    "calibrate": "calibrate",
    "evaluate": "evaluate",
    "serve": "serve",
    "features": "features",
    "finetune": "finetune",
    "ensemble": "ensemble",
    "build-demo": "build_demo",
    "people-cv": "people_cv",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one sub-parser per command module."""
    parser = argparse.ArgumentParser(
        prog=Path(sys.argv[0]).name if sys.argv[0] else "lipforensics-live",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run '%(prog)s COMMAND --help' for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"commands.{module_name}")
        command_parser = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the command, turn user errors into one line and exit code 2."""
    args = build_parser().parse_args(argv)
    limit_malloc_arenas()
    previous = signal.signal(signal.SIGTERM, _terminated)  # run and serve drain instead
    show_warning = warnings.showwarning
    warnings.showwarning = _one_line_warnings(show_warning)
    try:
        return int(args._run(args) or 0)
    except LipForensicsError as error:
        print(f"error: {printable(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
        warnings.showwarning = show_warning


def _one_line_warnings(show: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that prints a :class:`LipForensicsWarning` as one
    ``warning:`` line on stderr and hands any other warning to ``show``."""

    def show_warning(
        message: Warning | str, category: type[Warning], *args: object, **kwargs: object
    ) -> None:
        if issubclass(category, LipForensicsWarning):
            print(f"warning: {printable(str(message))}", file=sys.stderr, flush=True)
        else:
            show(message, category, *args, **kwargs)

    return show_warning


class Terminated(Exception):
    """SIGTERM arrived (outside the commands that drain on it)."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated
