"""``python -m spinlat ...``: the ``spinlat`` command (:func:`spinlat.cli.main`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
