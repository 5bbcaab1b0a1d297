"""mace-torch and e3nn, imported so that ``torch.load`` stays safe in the rest of the process.

Importing mace-torch sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` in ``os.environ``
(``mace/__init__.py``; also ``mace/calculators/mace.py``), which turns every later ``torch.load``
of the process — the user's own included — into a full unpickler that runs whatever code a file
carries. e3nn 0.4.4 in turn needs one non-tensor global, ``slice``, when it loads its constants
at import time, which is why mace sets the variable.

Everything here is imported inside :func:`torch_load_kept_safe`: that load is allowed exactly
``slice`` (``torch.serialization.safe_globals``) and the variable is put back to what it was
before (removed when it was unset). Every spinlat module that needs mace-torch or e3nn imports
this module first (or imports them under :func:`torch_load_kept_safe` itself); spinlat never
``torch.load``\\ s model files (they are safetensors files).
"""

from __future__ import annotations

import io
import os
import sys
import warnings
from contextlib import contextmanager, nullcontext, redirect_stdout

import torch

#: the environment variable mace-torch sets on import
VARIABLE = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


@contextmanager
def torch_load_kept_safe():
    """Context for importing mace-torch / e3nn: allows ``slice`` in weights-only loads meanwhile
    and restores ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` to its previous value (or unset) on exit."""
    before = os.environ.get(VARIABLE)
    allow = torch.serialization.safe_globals([slice]) if hasattr(torch.serialization, "safe_globals") \
        else nullcontext()  # torch < 2.5 loads without weights_only by default anyway
    try:
        with allow:
            yield
    finally:
        if before is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = before


# mace-torch prints "cuequivariance ... is not available" to stdout when imported (an optional GPU
# accelerator spinlat does not use): that line is dropped; anything else it prints goes to stderr
# (stdout carries the results of the spinlat commands)
_printed = io.StringIO()
with torch_load_kept_safe(), warnings.catch_warnings(), redirect_stdout(_printed):
    warnings.simplefilter("ignore")
    import e3nn.nn  # noqa: F401
    import e3nn.o3  # noqa: F401
    import mace  # noqa: F401
    import mace.modules  # noqa: F401
    import mace.modules.blocks  # noqa: F401
    import mace.modules.irreps_tools  # noqa: F401
_rest = [line for line in _printed.getvalue().splitlines() if line.strip() and "cuequivariance" not in line.lower()]
if _rest:
    print("\n".join(_rest), file=sys.stderr)
del _printed, _rest

__all__ = ["VARIABLE", "torch_load_kept_safe"]
