"""Graded irreps and the symmetric-monomial product basis against dense references."""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

from e3nn import o3  # noqa: E402

from spinlat.potentials.mmace import graded  # noqa: E402
from spinlat.potentials.mmace.blocks import MomentCoupling, SymmetricProduct, coupling_terms, symmetrize_dense  # noqa: E402
from spinlat.potentials.mmace.graded import GradedIrreps  # noqa: E402
from spinlat.potentials.mmace.model import default_dtype  # noqa: E402

from _tiny import _one_thread  # noqa: E402,F401

C = 3
IN = GradedIrreps([(C, "0e", 1), (C, "1o", 1), (C, "2e", 1), (C, "1e", -1), (C, "1o", -1)])
OUT = GradedIrreps([(C, "0e", 1), (C, "1e", -1), (C, "1o", 1)])


def signs(g, which):
    """Diagonal of spatial inversion ("P") or time reversal ("T") on the features of ``g``."""
    return torch.cat([torch.full((mul * ir.dim,), float(ir.p if which == "P" else t)) for mul, ir, t in g])


def dense_reference(sp, x, species):
    """B[n, c, (o, M)] = Σ_{ν,k} W[s_n, k, c] Σ_{p} U[p, M, k] Π_{d ∈ p} A[n, c, d] — plain loops."""
    x = x.detach().numpy()
    n = len(x)
    a = np.concatenate([x[:, k0:k0 + C * d].reshape(n, C, d)
                        for k0, d in zip(np.cumsum([0] + [C * d for d in sp.dims])[:-1], sp.dims)], axis=-1)
    monos = []
    for nu in range(1, sp.correlation + 1):
        first = sp.first.numpy() if nu == 1 else None
        if nu == 1:
            monos += [(int(f),) for f in first]
        else:
            prev = [m for m in monos if len(m) == nu - 1]
            monos += [prev[int(p)] + (int(last),) for p, last in zip(getattr(sp, f"prefix_{nu}"), getattr(sp, f"last_{nu}"))]
    outs = []
    for o, w in enumerate(sp.weights):
        U = getattr(sp, f"U_{o}").detach().numpy()          # (P, M, K)
        W = w.detach().numpy()                               # (S, K, C)
        out = np.zeros((n, C, U.shape[1]))
        for i in range(n):
            for c in range(C):
                vals = np.array([np.prod(a[i, c, list(m)]) for m in monos])
                out[i, c] = np.einsum("p,pmk,k->m", vals, U, W[species[i], :, c])
        outs.append(out.reshape(n, -1))
    return np.concatenate(outs, axis=1)


def test_symmetric_product_matches_dense_loops():
    torch.manual_seed(0)
    with default_dtype(torch.float64):
        sp = SymmetricProduct(IN, OUT, correlation=3, num_elements=2)
    x = torch.randn(5, IN.dim, dtype=torch.float64)
    species = np.array([0, 1, 1, 0, 1])
    attrs = torch.nn.functional.one_hot(torch.tensor(species), 2).double()
    np.testing.assert_allclose(sp(x, attrs).detach().numpy(), dense_reference(sp, x, species), rtol=1e-12, atol=1e-12)


def test_blocks_are_exactly_equivariant_under_inversion_and_time_reversal():
    torch.manual_seed(1)
    x = torch.randn(6, IN.dim, dtype=torch.float64)
    attrs = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 1, 1, 0]), 2).double()
    sh = graded.harmonics_of_moments(2)
    ym, feats = torch.randn(6, sh.dim, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    modules = {
        "product": (SymmetricProduct(IN, OUT, 3, 2).double(), lambda m, s: m(x * s(IN), attrs), OUT),
        "coupling": (MomentCoupling(IN, sh, OUT, 4).double(), lambda m, s: m(x * s(IN), ym * s(sh), feats), OUT),
        "linear": (graded.linear(IN, OUT).double(), lambda m, s: m(x * s(IN)), OUT),
        "tensor product": (graded.tensor_product(IN, GradedIrreps([(2, "0e", 1)]), OUT).double(),
                           lambda m, s: m(x * s(IN), attrs), OUT),
    }
    for name, (mod, call, out) in modules.items():
        for which in "PT":
            ref = call(mod, lambda g: torch.ones(g.dim, dtype=torch.float64)) * signs(out, which).double()
            got = call(mod, lambda g, w=which: signs(g, w).double())
            assert torch.equal(got, ref), (name, which)
        # and they are not trivially zero on the odd outputs
        assert call(mod, lambda g: torch.ones(g.dim, dtype=torch.float64)).abs().max() > 1e-3


def test_symmetric_product_is_rotation_equivariant():
    torch.manual_seed(2)
    with default_dtype(torch.float64):
        sp = SymmetricProduct(IN, OUT, 3, 1)
    x = torch.randn(4, IN.dim, dtype=torch.float64)
    attrs = torch.ones(4, 1, dtype=torch.float64)
    with default_dtype(torch.float64):    # e3nn builds Wigner matrices in the default dtype
        R = o3.rand_matrix()
        Din, Dout = IN.irreps.D_from_matrix(R), OUT.irreps.D_from_matrix(R)
    torch.testing.assert_close(sp(x @ Din.T, attrs), sp(x, attrs) @ Dout.T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ir_out", ["0e", "1o", "2e"])
def test_coupling_terms_span_what_mace_spans(ir_out):
    """Our independent symmetric couplings span exactly mace's (non-symmetrised) U_matrix_real."""
    from mace.tools.cg import U_matrix_real

    entries = (("0e", 1), ("1o", 1), ("2e", 1), ("3o", 1))
    irreps = o3.Irreps("0e+1o+2e+3o")
    for nu in (1, 2, 3):
        m1, c1 = coupling_terms(entries, ir_out, 1, nu)
        m2, c2 = symmetrize_dense(U_matrix_real(irreps, o3.Irreps(ir_out), nu, use_cueq_cg=False,
                                                dtype=torch.float64)[-1].numpy(), irreps.dim, nu)
        keys = sorted(set(map(tuple, m1)) | set(map(tuple, m2)))
        pos = {k: i for i, k in enumerate(keys)}

        def full(m, c):
            f = np.zeros((len(keys), c.shape[1], c.shape[2]))
            f[[pos[tuple(r)] for r in m]] = c
            return f.reshape(-1, c.shape[2])

        A, B = full(m1, c1), full(m2, c2)
        rank = np.linalg.matrix_rank
        assert rank(A) == A.shape[1]                      # independent
        assert rank(A) == rank(B) == rank(np.hstack([A, B]))   # same span


def test_time_reversal_selection_of_couplings():
    """Only monomials whose time-reversal parity equals the output's carry coefficients."""
    entries = tuple((str(ir), t) for _, ir, t in IN)
    sign = np.concatenate([np.full(ir.dim, t) for _, ir, t in IN])
    for (_, ir, tau), nu in itertools.product(OUT, (1, 2, 3)):
        mono, coef = coupling_terms(entries, str(ir), tau, nu)
        assert coef.shape[-1] > 0
        assert np.all(np.prod(sign[mono], axis=1) == tau)


def test_hidden_irreps_labels():
    g = graded.from_labels("4x0e+4x1o+4x2e", time_reversal_labels=True)
    assert list(g) == [(4, o3.Irrep("0e"), 1), (4, o3.Irrep("1e"), -1), (4, o3.Irrep("2e"), 1)]
    assert list(graded.from_labels("4x0e+4x1o", time_reversal_labels=False)) == [(4, o3.Irrep("0e"), 1),
                                                                              (4, o3.Irrep("1o"), 1)]
