"""A worker initialiser that starts as slowly as a spawned process importing a big model (for
tests/test_interrupts.py: a stop must not wait for it). Importable by spawned workers (the
tests directory is on the sys.path they inherit).

Its start-up does not end on a clock: it waits until the file named in
``SPINLAT_TEST_RELEASE`` exists (the test creates it once its checks are done; 600 s is a hang
guard only), so no worker can get through it while the stop is under way, however slow or
loaded the machine. A worker that does get through writes its process id to the file named in
``SPINLAT_TEST_STARTED_MARK``: a test that finds no such file knows that no worker's start-up
was awaited (a search that waited for one would hang until the guard, then find the mark)."""

import os
import time

from spinlat.search import _worker_start  # the real one (tests put these in its place: a forked worker inherits that)

MARK = "SPINLAT_TEST_STARTED_MARK"
RELEASE = "SPINLAT_TEST_RELEASE"


def slow_start(*args):
    release = os.environ.get(RELEASE)
    guard = time.monotonic() + 600  # hang guard only
    while not (release and os.path.exists(release)) and time.monotonic() < guard:
        time.sleep(0.05)
    if os.environ.get(MARK):
        with open(os.environ[MARK], "a") as f:
            f.write(f"{os.getpid()}\n")
    return _worker_start(*args)


def signalled_start(*args):
    """A worker initialiser that gets Ctrl-C and SIGTERM before anything else (as a terminal's
    Ctrl-C or a batch scheduler's SIGTERM reaches every process of the job while the workers
    still import), then starts as spinlat's workers do."""
    import signal

    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGTERM)
    return _worker_start(*args)
