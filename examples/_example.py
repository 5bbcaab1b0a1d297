"""Command-line handling shared by the example scripts (not part of spinlat's API).

``ArgumentParser`` reports a bad argument on one line (``script.py: error: ... (see script.py
--help)``, status 2) and adds ``--debug``; its ``--help`` opens with the first paragraph of the
description it is given (the script's docstring, whole sentences, never a line cut mid-sentence)
and gives every option's default; ``run(main)`` calls ``main()`` and turns a user error
(any :class:`spinlat.errors.SpinlatError`, or a file that cannot be read or written) into one line
``script.py: error: ...`` on stderr and status 1, as the ``spinlat`` command does, and Ctrl-C or
SIGTERM into one line ``script.py: interrupted ...`` and status 130 / 143 (what the script wrote
before stays: a trajectory keeps every frame it had). With ``--debug`` the traceback is shown
instead. Anything else is a bug and keeps its traceback.
"""

import argparse
import os
import sys

from spinlat.errors import SpinlatError

_debug = False


class _DefaultsFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help unless it names its default already or has none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" not in text and not any(action.default is v for v in (None, False, argparse.SUPPRESS))
                and (action.option_strings or action.nargs in ("?", "*"))):
            text += " (default: %(default)s)" if text else "default: %(default)s"
        return text


class _RawDescriptionDefaultsFormatter(argparse.RawDescriptionHelpFormatter, _DefaultsFormatter):
    """The description as written (line breaks kept) and every option's default."""


def first_paragraph(doc: str) -> str:
    """The text of ``doc`` up to its first blank line, on one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors, a ``--debug`` option, the first paragraph of
    ``description`` and every option's default in ``--help``."""

    def __init__(self, *args, **kwargs):
        if kwargs.get("formatter_class") is None:
            kwargs["formatter_class"] = _DefaultsFormatter
            if kwargs.get("description"):
                kwargs["description"] = first_paragraph(kwargs["description"])
        elif kwargs["formatter_class"] is argparse.RawDescriptionHelpFormatter:
            kwargs["formatter_class"] = _RawDescriptionDefaultsFormatter
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the traceback of errors")

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        global _debug
        out = super().parse_args(args, namespace)
        _debug = bool(out.debug)
        return out


def run(main, *args, **kwargs) -> None:
    """Exit with ``main(*args, **kwargs)``'s status (None: 0); a user error → one line, status 1."""
    prog = os.path.basename(sys.argv[0])
    try:
        status = main(*args, **kwargs)
    except (SpinlatError, OSError) as exc:
        if _debug:
            raise
        print(f"{prog}: error: {' '.join(str(exc).split()) or type(exc).__name__}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (spinlat.interrupts.Terminated)
        if _debug:
            raise
        from spinlat.interrupts import Terminated

        term = isinstance(exc, Terminated)
        print(f"{prog}: interrupted ({'SIGTERM' if term else 'Ctrl-C'}); what it wrote so far is kept (a trajectory "
              "holds every frame up to the stop)", file=sys.stderr)
        sys.exit(143 if term else 130)
    sys.exit(int(status or 0))


def gneb_status(res, tol) -> int:
    """Exit status of a GNEB example: 0 when the band ``res`` (a :class:`spinlat.transitions.GNEBResult`)
    converged; else 1, with a note on stderr that the barrier printed is the last band's, not a saddle
    point's, as ``spinlat gneb`` exits 1."""
    if res.converged:
        return 0
    print(f"{os.path.basename(sys.argv[0])}: the band did not converge to tol {tol:g} eV/rad in {res.iterations} "
          f"iterations ({res.reason}): the barrier above is the last band's, not a converged saddle point; "
          "rerun with more --images or a looser --tol", file=sys.stderr)
    return 1
