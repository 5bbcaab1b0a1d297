"""A worker initialiser that starts as slowly as a spawned process importing a big model (for
tests/test_interrupts.py: a stop must not wait for it). Importable by spawned workers (the
tests directory is on the sys.path they inherit). When the environment names a file in
``SPINLAT_TEST_STARTED_MARK``, a worker that gets through its start-up writes it: a test that
finds no such file after the stop knows no worker's start-up was awaited, whatever the machine's
speed."""

import os
import time

MARK = "SPINLAT_TEST_STARTED_MARK"


def slow_start(*args):
    from spinlat import search

    time.sleep(60)
    if os.environ.get(MARK):
        with open(os.environ[MARK], "a") as f:
            f.write(f"{os.getpid()}\n")
    return search._worker_start(*args)
