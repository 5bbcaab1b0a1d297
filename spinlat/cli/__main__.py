"""``python -m spinlat.cli``: the ``spinlat`` command."""

import sys

from . import main

sys.exit(main())
