"""A worker initialiser that starts as slowly as a spawned process importing a big model (for
tests/test_interrupts.py: a stop must not wait for it). Importable by spawned workers (the
tests directory is on the sys.path they inherit)."""

import time


def slow_start(*args):
    from spinlat import search

    time.sleep(60)
    return search._worker_start(*args)
