"""The mMACE network: MACE with magnetic moment vectors as per-atom inputs.

Architecture (per interaction layer t, built from mace-torch's blocks on e3nn):

1. *Sender coupling* (on the nodes, before any edge work): the sender's features h_j are
   coupled to the harmonics of its own moment, ``h̃_j = Lin(TP(h_j, Y(m̃_j); w(|m_j|, Z_j)))``,
   where m̃ = m / m_max(Z) and the tensor-product weights w are a per-species linear function of
   a magnitude basis (see :mod:`.blocks`). Coupling on the nodes costs O(N) instead of O(E) and is
   the same function class as coupling every edge message to the sender's moment.
2. *Message*: ``A_i = Σ_j R(r_ij, m_i·m_j) ⊗ Y(r̂_ij) ⊗ h̃_j / avg_num_neighbors``; the radial
   MLP sees the Bessel basis of r_ij and an exchange basis of the invariant m̃_i·m̃_j (so
   Heisenberg-like pair terms are learned directly), and its output is multiplied by mace's
   polynomial cutoff envelope so every message vanishes smoothly at r_max. Moment irreps that
   the node features do not already carry (the l = 1 moment in layer 1) use ``moment_channels``
   channels on the edges instead of the full width: that keeps the edge cost near plain MACE.
3. *Product basis*: mace-torch's ``EquivariantProductBasisBlock`` (symmetric contraction,
   correlation ν, species-dependent weights), plus the residual self-connection for t > 0.
4. *Self coupling*: after the product basis each atom couples to its own moment,
   ``B_i ← B_i + Lin(TP(B_i, Y(m̃_i); w'(|m_i|, Z_i)))``. In the last layer the product basis gives
   scalars only (as plain MACE) and the moment couples to the message instead:
   ``B_i ← B_i + Lin(TP(A_i, Y(m̃_i); w'))``, which keeps its cost at O(N).
5. *Readout* of every layer (linear; an MLP for the last one); energy per atom
   ``E_i = E0(Z_i) + scale · Σ_t readout_t + shift + Σ_k a_{Z_i,k} (|m_i|/m_max)^{2k}`` (the last sum
   is the optional Landau-like one-body term).

Symmetries, exact by construction:

- *Time reversal* E(r, m) = E(r, −m). With ``soc=True`` every feature carries the e3nn parity
  label, and we use that label for time-reversal parity instead of spatial inversion: the
  spherical harmonics of bond vectors are all labelled even (``1x0e+1x1e+...``, as mace's
  ``use_so3``), the solid harmonics of the moment are labelled (−1)^l, and magnitudes and
  m_i·m_j are even scalars. e3nn's layers are exactly equivariant under that label, so "m → −m"
  acts on every feature as the parity operation and the ``0e`` energy cannot change. Spatial
  inversion is therefore *not* imposed with ``soc=True`` (the model is SO(3)-equivariant in
  space; inversion-related configurations are learned from data). With ``soc=False`` the moments
  enter only through |m_i|² and m_i·m_j, both even, so time reversal holds trivially and full
  O(3) equivariance in space is kept (ordinary MACE parity labels).
- *Rotations*: ``soc=True`` — bond vectors and moments rotate together (anisotropy, DMI and
  anisotropic exchange can be learned); ``soc=False`` — the energy is unchanged when all moments
  rotate with the lattice fixed, since only |m_i| and m_i·m_j enter.
- *Smoothness at |m| → 0*: solid harmonics |m|^l Y_lm(m̂) are polynomials of m, the magnitude basis
  is a polynomial of x = (1 − u)/(1 + u), u = |m̃|², and m̃_i·m̃_j is bilinear, so the energy is a
  smooth function of m everywhere, including m = 0 (non-magnetic atoms).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np

from . import safe_imports  # noqa: F401  -- mace-torch and e3nn, leaving torch.load safe
import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from e3nn import nn as e3nn_nn
    from e3nn import o3
    from mace.modules.blocks import (
        EquivariantProductBasisBlock,
        LinearNodeEmbeddingBlock,
        LinearReadoutBlock,
        NonLinearReadoutBlock,
        RadialEmbeddingBlock,
    )
    from mace.modules.irreps_tools import reshape_irreps, tp_out_irreps_with_instructions

from .blocks import MomentCoupling, exchange_basis, moment_basis

#: default hyperparameters (mace-torch names plus the magnetic ones)
DEFAULTS = dict(
    r_max=5.0,
    num_bessel=8,
    num_polynomial_cutoff=5,
    max_ell=3,
    num_interactions=2,
    hidden_irreps="32x0e+32x1o",
    correlation=3,
    MLP_irreps="16x0e",
    radial_MLP=[64, 64, 64],
    avg_num_neighbors=30.0,
    # magnetic
    m_max=3.0,               # μB, scale of the moment per species (float or {symbol: value})
    num_moment_basis=8,      # Chebyshev functions of the magnitude
    max_ell_m=1,             # highest l of the moment's solid harmonics (soc=True)
    max_ell_odd=1,           # highest l of time-reversal-odd message irreps (soc=True)
    num_exchange_basis=4,    # Chebyshev functions of m_i·m_j on the edges
    landau_order=3,          # one-body polynomial in |m|²: orders 1..landau_order (0: off)
    moment_channels=None,    # channels of moment irreps absent from the node features (None: C // 4)
)


@contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


class MagneticMACEModel(torch.nn.Module):
    """The mMACE network. See the module docstring for the architecture.

    Parameters are the hyperparameters of :data:`DEFAULTS` plus ``z_table`` (atomic numbers, the
    species order of one-hot ``node_attrs``), ``soc`` and ``m_max`` as a list per species (μB).
    Settable by training: buffer ``atomic_energies`` (S,) eV, buffers ``scale`` and ``shift`` (eV).
    """

    def __init__(self, z_table, soc=True, *, r_max, num_bessel, num_polynomial_cutoff, max_ell, num_interactions,
                 hidden_irreps, correlation, MLP_irreps, radial_MLP, avg_num_neighbors, m_max, num_moment_basis,
                 max_ell_m, max_ell_odd, num_exchange_basis, landau_order, moment_channels=None):
        super().__init__()
        S = len(z_table)
        self.soc = bool(soc)
        self.num_interactions = int(num_interactions)
        self.register_buffer("z_table", torch.tensor(list(z_table), dtype=torch.int64))
        self.register_buffer("m_max", torch.tensor(np.broadcast_to(np.asarray(m_max, float), (S,)).copy()))
        self.register_buffer("atomic_energies", torch.zeros(S))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("shift", torch.tensor(0.0))
        self.num_moment_basis = int(num_moment_basis)
        self.num_exchange_basis = int(num_exchange_basis)
        self.landau_order = int(landau_order)
        if self.landau_order > 0:
            self.landau = torch.nn.Parameter(torch.zeros(S, self.landau_order))
        hidden_irreps = o3.Irreps(hidden_irreps)
        C = hidden_irreps.count(o3.Irrep(0, 1))
        if C == 0 or any(mul != C for mul, _ in hidden_irreps):
            raise ValueError(f"hidden_irreps must have the same multiplicity for every irrep incl. 0e, got {hidden_irreps}")
        if isinstance(correlation, int):
            correlation = [correlation] * num_interactions
        attr_irreps = o3.Irreps(f"{S}x0e")
        scalars = o3.Irreps(f"{C}x0e")

        # --- harmonics of bonds and moments, and the parity bookkeeping (see module docstring)
        if self.soc:
            sh_r = o3.Irreps.spherical_harmonics(max_ell, p=1)        # bonds: time-reversal even
            sh_m = o3.Irreps.spherical_harmonics(max_ell_m)          # moments: parity (-1)^l = TR parity
            odd = o3.Irreps([(1, (l, -1)) for l in range(1, max_ell_odd + 1)]) if max_ell_odd >= 1 else o3.Irreps("")
            message_irreps = (C * (sh_r + odd)).sort()[0].simplify()
        else:
            sh_r = o3.Irreps.spherical_harmonics(max_ell)            # ordinary O(3) labels
            sh_m = o3.Irreps("0e")                                   # only |m| enters on the nodes
            message_irreps = (C * sh_r).sort()[0].simplify()
        self.sh_r_irreps, self.sh_m_irreps = sh_r, sh_m
        self.spherical_harmonics = o3.SphericalHarmonics(sh_r, normalize=True, normalization="component")
        self.node_embedding = LinearNodeEmbeddingBlock(attr_irreps, scalars)
        self.radial_embedding = RadialEmbeddingBlock(r_max=r_max, num_bessel=num_bessel,
                                                     num_polynomial_cutoff=num_polynomial_cutoff, apply_cutoff=False)
        edge_dim = num_bessel + self.num_exchange_basis
        M = max(1, C // 4) if moment_channels is None else int(moment_channels)
        n_moment_feats = S * self.num_moment_basis

        self.linear_up = torch.nn.ModuleList()
        self.send = torch.nn.ModuleList()
        self.conv_tp = torch.nn.ModuleList()
        self.conv_tp_weights = torch.nn.ModuleList()
        self.linear = torch.nn.ModuleList()
        self.first_skip = None
        self.skip = torch.nn.ModuleList()
        self.reshape = torch.nn.ModuleList()
        self.products = torch.nn.ModuleList()
        self.self_coupling = torch.nn.ModuleList()
        self.readouts = torch.nn.ModuleList()
        node_irreps = scalars
        for t in range(num_interactions):
            last = t == num_interactions - 1
            product_out = scalars if last else hidden_irreps
            # 1. sender coupling, on the nodes
            self.linear_up.append(o3.Linear(node_irreps, node_irreps))
            # moment irreps already carried by the nodes keep C channels, new ones get M (cheaper edges)
            node_set = {ir for _, ir in node_irreps}
            edge_irreps = o3.Irreps([(C, ir) for ir in sorted(node_set)]
                                    + [(M, ir) for _, ir in sh_m if ir not in node_set]).sort()[0].simplify()
            self.send.append(MomentCoupling(node_irreps, sh_m, edge_irreps, n_moment_feats))
            # 2. message
            mid, instructions = tp_out_irreps_with_instructions(edge_irreps, sh_r, message_irreps)
            tp = o3.TensorProduct(edge_irreps, sh_r, mid, instructions=instructions, shared_weights=False,
                                  internal_weights=False)
            self.conv_tp.append(tp)
            self.conv_tp_weights.append(e3nn_nn.FullyConnectedNet([edge_dim] + list(radial_MLP) + [tp.weight_numel],
                                                                  torch.nn.functional.silu))
            self.linear.append(o3.Linear(mid, message_irreps))
            if t == 0:
                self.first_skip = o3.FullyConnectedTensorProduct(message_irreps, attr_irreps, message_irreps)
            else:
                self.skip.append(o3.FullyConnectedTensorProduct(node_irreps, attr_irreps, product_out))
            self.reshape.append(reshape_irreps(message_irreps))
            # 3. product basis
            self.products.append(EquivariantProductBasisBlock(
                node_feats_irreps=message_irreps, target_irreps=product_out, correlation=correlation[t],
                num_elements=S, use_sc=t > 0))
            # 4. self coupling
            # (last layer: the product gives scalars only, as in plain MACE; the atom's own moment then
            # couples to the message A_i itself, which keeps the direction coupling at node cost)
            out = scalars if last else hidden_irreps
            couple_in = message_irreps if (last and self.soc) else product_out
            self.self_coupling.append(MomentCoupling(couple_in, sh_m, out, n_moment_feats))
            # 5. readout
            if last:
                self.readouts.append(NonLinearReadoutBlock(out, o3.Irreps(MLP_irreps), torch.nn.functional.silu,
                                                           o3.Irreps("0e")))
            else:
                self.readouts.append(LinearReadoutBlock(out, o3.Irreps("0e")))
            node_irreps = out
        self.avg_num_neighbors = float(avg_num_neighbors)
        self.r_max = float(r_max)

    @classmethod
    def build(cls, z_table, soc=True, dtype=torch.float64, seed=None, **hyperparameters) -> "MagneticMACEModel":
        """Construct with :data:`DEFAULTS` updated by ``hyperparameters``, parameters in ``dtype``
        (initialised with ``torch.manual_seed(seed)`` when a seed is given)."""
        hp = dict(DEFAULTS)
        unknown = set(hyperparameters) - set(hp)
        if unknown:
            raise ValueError(f"unknown mMACE hyperparameter(s) {sorted(unknown)}; known: {sorted(hp)}")
        hp.update(hyperparameters)
        with warnings.catch_warnings(), default_dtype(torch.float64):
            warnings.simplefilter("ignore")
            if seed is not None:
                with torch.random.fork_rng():
                    torch.manual_seed(int(seed))
                    model = cls(z_table, soc=soc, **hp)
            else:
                model = cls(z_table, soc=soc, **hp)
        return model.to(dtype)

    # ------------------------------------------------------------------ pieces
    def _moment_inputs(self, magmoms, species):
        """Scaled moments m̃ (N,3), per-node moment features (N, S·K) and harmonics Y(m̃)."""
        mt = magmoms / self.m_max[species].unsqueeze(-1)
        u = (mt * mt).sum(-1)
        basis = moment_basis(u, self.num_moment_basis)                    # (N, K)
        S = self.m_max.shape[0]
        onehot = torch.nn.functional.one_hot(species, S).to(basis.dtype)
        feats = (onehot.unsqueeze(-1) * basis.unsqueeze(1)).reshape(len(species), -1)
        if self.soc:
            ym = o3.spherical_harmonics(self.sh_m_irreps, mt, normalize=False, normalization="component")
        else:
            ym = torch.ones(len(species), 1, dtype=mt.dtype, device=mt.device)
        return mt, u, feats, ym

    def forward(self, batch: dict, compute_forces: bool = True, compute_magnetic_forces: bool = True,
                compute_stress: bool = False, training: bool = False) -> dict:
        """Energies (B,) eV, node_energy (N,) eV, forces (N,3) eV/Å, magnetic_forces −∂E/∂m (N,3) eV/μB,
        stress (B,3,3) eV/Å³ (ASE sign); missing outputs are None."""
        positions = batch["positions"]
        magmoms = batch["magmoms"]
        node_attrs = batch["node_attrs"]
        species = batch["species"]
        edge_index = batch["edge_index"]
        shifts = batch["shifts"]
        index = batch["batch"]
        n_graphs = batch["ptr"].shape[0] - 1
        sender, receiver = edge_index[0], edge_index[1]
        inputs = []
        if compute_forces:
            positions = positions.detach().requires_grad_(True)
            inputs.append(positions)
        if compute_magnetic_forces:
            magmoms = magmoms.detach().requires_grad_(True)
            inputs.append(magmoms)
        cell = batch["cell"]
        if compute_stress:
            displacement = torch.zeros((n_graphs, 3, 3), dtype=positions.dtype, device=positions.device,
                                       requires_grad=True)
            inputs.append(displacement)
            sym = 0.5 * (displacement + displacement.transpose(-1, -2))
            positions = positions + torch.einsum("ni,nij->nj", positions, sym[index])
            shifts = shifts + torch.einsum("ei,eij->ej", shifts, sym[index[receiver]])
            cell = cell + torch.matmul(cell, sym)

        with torch.set_grad_enabled(bool(inputs) or torch.is_grad_enabled()):
            node_energy = self._node_energy(positions, magmoms, node_attrs, species, sender, receiver, shifts)
            energy = torch.zeros(n_graphs, dtype=node_energy.dtype, device=node_energy.device)
            energy = energy.index_add(0, index, node_energy)
        out = {"energy": energy, "node_energy": node_energy, "forces": None, "magnetic_forces": None, "stress": None}
        if inputs:
            grads = torch.autograd.grad([energy.sum()], inputs, create_graph=training, retain_graph=training,
                                        allow_unused=True)
            grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]
            k = 0
            if compute_forces:
                out["forces"] = -grads[k]
                k += 1
            if compute_magnetic_forces:
                out["magnetic_forces"] = -grads[k]
                k += 1
            if compute_stress:
                volume = torch.linalg.det(cell).abs()
                out["stress"] = grads[k] / volume.view(-1, 1, 1)
        return out

    def _node_energy(self, positions, magmoms, node_attrs, species, sender, receiver, shifts):
        vectors = positions[sender] - positions[receiver] + shifts            # r_ij = r_j - r_i (+shift)
        lengths = torch.linalg.norm(vectors, dim=-1, keepdim=True)
        mt, u, mfeats, ym = self._moment_inputs(magmoms, species)
        # edge scalars: Bessel(r)·cutoff, and its products with the exchange basis of m̃_i·m̃_j
        radial, cutoff = self.radial_embedding(lengths, node_attrs, None, None)
        if self.num_exchange_basis > 0:
            c = (mt[sender] * mt[receiver]).sum(-1)
            edge_feats = torch.cat([radial, exchange_basis(c, self.num_exchange_basis)], dim=1)
        else:
            edge_feats = radial
        edge_attrs = self.spherical_harmonics(vectors)

        node_e = node_attrs @ self.atomic_energies
        inter = torch.zeros_like(node_e)
        h = self.node_embedding(node_attrs)
        n = positions.shape[0]
        for t in range(self.num_interactions):
            sc = self.skip[t - 1](h, node_attrs) if t > 0 else None
            ht = self.send[t](self.linear_up[t](h), ym, mfeats)
            w = self.conv_tp_weights[t](edge_feats) * cutoff         # the envelope makes R vanish smoothly at r_max
            mji = self.conv_tp[t](ht[sender], edge_attrs, w)
            msg = torch.zeros((n, mji.shape[1]), dtype=mji.dtype, device=mji.device).index_add(0, receiver, mji)
            msg = self.linear[t](msg) / self.avg_num_neighbors
            if t == 0:
                msg = self.first_skip(msg, node_attrs)
            b = self.products[t](node_feats=self.reshape[t](msg), sc=sc, node_attrs=node_attrs)
            last = t == self.num_interactions - 1
            h = b + self.self_coupling[t](msg if (last and self.soc) else b, ym, mfeats)
            inter = inter + self.readouts[t](h).squeeze(-1)
        node_e = node_e + self.scale * inter + self.shift
        if self.landau_order > 0:
            powers = torch.stack([u ** (k + 1) for k in range(self.landau_order)], dim=-1)
            node_e = node_e + (self.landau[species] * powers).sum(-1)
        return node_e
