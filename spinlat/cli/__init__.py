"""The ``spinlat`` command line: ``spinlat [--debug] COMMAND ARGS``.

One module per subcommand in this package (:mod:`~spinlat.cli.run`, ``minimize``, ``search``,
``analyze``, ``train``, ``export``, ``gneb``, ``convert``), each with ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> exit status``; configs and their schemas live in
:mod:`spinlat.config`. Results go to stdout, diagnostics (progress, thermo lines, notes, errors)
to stderr.
Adding a subcommand is a new module here plus its name in :data:`SUBCOMMANDS`. Code outside
this package adds one with :func:`register`::

    from spinlat.cli import register

    def add_arguments(parser):
        parser.add_argument("path")

    def run(args) -> int:
        ...
        return 0

    register("mycommand", "what it does, in one line", add_arguments, run)

Warnings (a convergence warning, a file column that was not read) print as one line ``spinlat
COMMAND: warning: ...`` on stderr and in the run's log. Errors: a user error (any :class:`~spinlat.errors.SpinlatError`, or a file that cannot be read
or written) prints one line ``spinlat COMMAND: error: ...`` on stderr and exits with status 1
(bad command-line arguments: status 2; Ctrl-C: 130; SIGTERM, as batch schedulers send at their
time limit: 143, after a run has flushed every frame it holds, as on Ctrl-C). Anything else is a bug in spinlat and
shows its traceback; ``--debug`` shows the traceback of user errors too.
"""

from __future__ import annotations

import argparse
import importlib
import re
import signal
import sys
import warnings
from dataclasses import dataclass
from typing import Callable

from ..config import check_train_config  # noqa: F401  (public here since 0.1)
from ..errors import SpinlatError
from ..interrupts import Terminated, interrupt_cause, sigterm_raises  # noqa: F401  (Terminated public here)

#: the built-in subcommands: modules of this package, in the order ``spinlat --help`` lists them
SUBCOMMANDS = ("run", "minimize", "search", "analyze", "train", "export", "gneb", "convert")


@dataclass
class Command:
    """One subcommand: ``add_arguments(parser)`` and ``run(args) -> exit status``."""

    help: str
    add_arguments: Callable
    run: Callable


#: subcommand name → Command (the built-ins are added on the first :func:`main` / :func:`build_parser`)
COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, add_arguments: Callable, run: Callable) -> None:
    """Add (or replace) the subcommand ``name``: ``add_arguments(parser)`` adds its arguments
    to an argparse sub-parser, ``run(args)`` runs it and returns the exit status."""
    COMMANDS[name] = Command(help, add_arguments, run)


def _load_builtin() -> None:
    for name in SUBCOMMANDS:
        if name not in COMMANDS:
            mod = importlib.import_module(f".{name}", __name__)
            register(name, mod.HELP, mod.add_arguments, mod.run)


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``spinlat`` with every registered subcommand."""
    from .. import __version__

    _load_builtin()
    parser = _Parser(prog="spinlat", description="spin-lattice simulation engine")
    parser.add_argument("--version", action="version", version=f"spinlat {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.subcommand_parsers = {}  # name → its parser, so that main can report its own usage errors
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        parser.subcommand_parsers[name] = p
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of errors")
        cmd.add_arguments(p)
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


#: a negative index or a slice that starts with one (``-3:``, ``-10::2``, ``-5:-1``)
_NEGATIVE_SLICE = re.compile(r"^-\d+(:-?\d*)?(:-?\d*)?$")


def _join_negative_slices(argv):
    """``--frames -3:`` → ``--frames=-3:``: argparse takes a value that starts with ``-`` and is
    not a plain number for an option and stops with "expected one argument"; a value in slice
    syntax after a long option is joined to it, for every option of every subcommand."""
    out = []
    for tok in argv:
        if out and _NEGATIVE_SLICE.match(tok) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


def main(argv=None) -> int:
    """Entry point of the ``spinlat`` command; returns the exit status."""
    parser = build_parser()
    argv = _join_negative_slices(list(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand's parser: "spinlat run: error: ... (see spinlat run --help)"
        parser.subcommand_parsers.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    from .common import close_log, refuse_wrong_kind_of_file

    # SIGTERM raises Terminated while the command runs, as Ctrl-C raises KeyboardInterrupt (a run
    # holds both back to the end of its chunk, spinlat.interrupts.deferred)
    with sigterm_raises():
        try:
            with warnings.catch_warnings():
                if not args.debug:  # --debug keeps Python's form (file, line and source of the warning)
                    warnings.showwarning = _warning_line(args.command)
                refuse_wrong_kind_of_file(args)
                return int(COMMANDS[args.command].run(args) or 0)
        except BrokenPipeError:  # `spinlat analyze X.h5 | head`: the reader left, as for other Unix tools
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (no second error at exit's flush)
            return 128 + signal.SIGPIPE
        except (SpinlatError, OSError) as exc:
            if args.debug:
                raise
            print(f"spinlat {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 1
        except BaseException as exc:
            # Ctrl-C or SIGTERM; also when it reached us as the SystemError of C code that had
            # called back into Python when it arrived (numba's dispatcher, torch, h5py)
            interrupt = interrupt_cause(exc)
            if interrupt is None or args.debug:
                raise
            if isinstance(interrupt, Terminated):
                # what was kept, if anything, the command has said (a run's frames, a band, minima, a model)
                print(f"spinlat {args.command}: terminated (SIGTERM)", file=sys.stderr)
                return 128 + signal.SIGTERM
            print(f"spinlat {args.command}: interrupted", file=sys.stderr)
            return 130
        finally:
            close_log()


def _warning_line(command):
    """``warnings.showwarning`` for a command: one line ``spinlat COMMAND: warning: ...`` (the
    category named unless it is a plain UserWarning) on stderr, and in the run's log file when
    the command keeps one; Python's form adds the file, line and source line of the library."""
    from .common import log

    def show(message, category, filename, lineno, file=None, line=None):
        kind = "" if category is UserWarning else f" ({category.__name__})"
        text = f"spinlat {command}: warning: {' '.join(str(message).split())}{kind}"
        if log.handlers:  # setup_log ran: stderr and the log file
            log.warning(text)
        else:
            print(text, file=sys.stderr, flush=True)

    return show


