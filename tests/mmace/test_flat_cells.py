"""mMACE with 2D cells as ASE builds them (zero third vector): a stress target on such a cell is a
clear error, and a training batch that mixes them with stressed bulk cells keeps finite gradients."""

import numpy as np
import pytest
from ase.build import bulk

from conftest import bcc_fe

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

from spinlat.errors import InputError  # noqa: E402
from spinlat.potentials import MagneticMACE  # noqa: E402
from spinlat.potentials.mmace.graph import build_batch, config_arrays  # noqa: E402

from _tiny import TINY, _one_thread  # noqa: E402,F401  (autouse fixture)


def flat_layer():
    atoms = bulk("Fe", "bcc", a=2.8665, cubic=True).repeat((2, 2, 1))
    atoms.cell[2] = 0.0
    atoms.pbc = (True, True, False)
    atoms.set_initial_magnetic_moments(np.full(len(atoms), 2.2))
    return atoms


def test_stress_target_on_a_flat_cell_is_refused():
    atoms = flat_layer()
    atoms.info["stress"] = np.zeros(6)
    with pytest.raises(InputError, match=r"configuration 3: info\['stress'\] is given but the cell is not periodic"):
        config_arrays(atoms, 3)


def test_batch_with_flat_cell_keeps_gradients_finite():
    p = MagneticMACE.create(["Fe"], seed=0, **TINY)
    bulk_atoms = bcc_fe((2, 2, 2), seed=1).to_ase()
    bulk_atoms.info["stress"] = np.full(6, 0.01)
    batch = build_batch([bulk_atoms, flat_layer()], TINY["r_max"], [26])
    out = p.model(batch, compute_forces=True, compute_magnetic_forces=True, compute_stress=True, training=True)
    assert torch.isfinite(out["stress"]).all()
    sm = batch["stress_mask"]
    assert sm.tolist() == [True, False]
    loss = (out["stress"][sm] ** 2).sum() + (out["forces"] ** 2).sum() + out["energy"].sum()
    loss.backward()
    grads = [q.grad for q in p.model.parameters() if q.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
