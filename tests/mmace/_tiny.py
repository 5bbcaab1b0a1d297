"""Shared settings of the mMACE tests: a tiny model and one torch thread."""

import pytest
import torch

TINY = dict(hidden_irreps="8x0e+8x1o", radial_MLP=[16, 16], MLP_irreps="8x0e", max_ell=2, r_max=4.0,
            num_bessel=6, avg_num_neighbors=14.0)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny graphs: one thread avoids OpenMP oversubscription on busy machines."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
