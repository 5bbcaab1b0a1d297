"""Command-line handling shared by the example scripts (not part of spinlat's API).

``ArgumentParser`` reports a bad argument on one line (``script.py: error: ... (see script.py
--help)``, status 2) and adds ``--debug``; ``run(main)`` calls ``main()`` and turns a user error
(any :class:`spinlat.errors.SpinlatError`, or a file that cannot be read or written) into one line
``script.py: error: ...`` on stderr and status 1, as the ``spinlat`` command does. With
``--debug`` the traceback is shown instead. Anything else is a bug and keeps its traceback.
"""

import argparse
import os
import sys

from spinlat.errors import SpinlatError

_debug = False


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors and a ``--debug`` option."""

    def __init__(self, *args, **kwargs):
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
    sys.exit(int(status or 0))
