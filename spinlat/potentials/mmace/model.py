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
3. *Product basis*: MACE's symmetric contraction (correlation ν, species-dependent weights) with
   the time-reversal selection rule, evaluated on symmetric monomials of the message
   (:class:`.blocks.SymmetricProduct`), plus the residual self-connection for t > 0.
4. *Self coupling*: after the product basis each atom couples to its own moment,
   ``B_i ← B_i + Lin(TP(B_i, Y(m̃_i); w'(|m_i|, Z_i)))``. In the last layer the product basis gives
   scalars only (as plain MACE) and the moment couples to the message instead:
   ``B_i ← B_i + Lin(TP(A_i, Y(m̃_i); w'))``, which keeps its cost at O(N).
5. *Readout* of every layer (linear; an MLP for the last one); energy per atom
   ``E_i = E0(Z_i) + scale · Σ_t readout_t + shift + Σ_k a_{Z_i,k} (|m_i|/m_max)^{2k}`` (the last sum
   is the optional Landau-like one-body term).

Symmetries, exact by construction (tested to 1e-12 relative in float64, ``tests/mmace/test_symmetry.py``):

- ``soc=True`` (spin-orbit coupled, spins locked to the lattice): the energy is invariant under
  the group O(3) × {1, 𝒯} × translations × permutations, where R ∈ O(3) acts jointly as
  r → R r, m → det(R) R m (moments are axial vectors) and time reversal 𝒯 as m → −m. In
  particular spatial inversion (r → −r, m unchanged) and time reversal are each exact on their
  own, and so is every improper rotation; a rotation of the moments alone is not a symmetry (so
  anisotropy, Dzyaloshinskii-Moriya and anisotropic exchange can be learned, DMI only where the
  structure lacks an inversion centre between the pair, as Moriya's rules demand). How: every
  feature carries both its O(3) irrep (l, p) — e3nn's label, p the true spatial parity — and a
  time-reversal parity τ (:mod:`.graded`): bond harmonics Y_l(r̂) are (l, (−1)^l, +), moment
  harmonics Y_l(m̃) are (l, +, (−1)^l), magnitudes and m̃_i·m̃_j are (0, +, +); every tensor
  product, linear map and product-basis coupling keeps only paths with p = p₁p₂ and τ = τ₁τ₂,
  and the energy is read out from (0, +, +) scalars only. ``hidden_irreps`` is read with its
  parity letter as τ (``1o`` = time-reversal-odd l = 1, as before); the spatial parity of such
  hidden features is the moment-like +1 for τ = −1 and the bond-like (−1)^l for τ = +1. The
  messages carry the bond harmonics (τ = +) and time-reversal-odd irreps of both spatial parities
  for 1 ≤ l ≤ ``max_ell_odd`` (1e: the type of m; 1o: the type of r̂ × m, which DMI needs).
- ``soc=False`` (no spin-orbit coupling): the moments enter only through |m_i| and m_i·m_j, so the
  energy is invariant under O(3)_lattice × O(3)_spin × translations × permutations: any R ∈ O(3)
  on positions and, independently, any Q ∈ O(3) on all moments (Q = −1 is time reversal), i.e.
  E(R r, Q m) = E(r, m). Every feature is time-reversal even and carries ordinary O(3) labels.
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
    from mace.modules.blocks import LinearNodeEmbeddingBlock, NonLinearReadoutBlock, RadialEmbeddingBlock

from . import graded
from .blocks import MomentCoupling, ProductBasis, exchange_basis, moment_basis
from .graded import GradedIrreps
from .hyperparameters import DEFAULTS, Hyperparameters, m_max_per_species

@contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


class EnergyModel(torch.nn.Module):
    """An energy model E(r, m) on a batched graph (:mod:`.graph`) with its derivatives by autograd.

    Subclasses give ``_node_energy(positions, magmoms, node_attrs, species, sender, receiver,
    shifts)`` → per-atom energies (N,) eV, where an edge's vector is
    r_ij = positions[sender] − positions[receiver] + shift, and a buffer ``z_table``."""

    def node_energies(self, positions, magmoms, node_attrs, species, sender, receiver, shifts):
        """Per-atom energies (N,) eV of a batched graph (arguments as ``_node_energy``), with the
        autograd graph kept: what :meth:`forward` sums, for callers that differentiate it further
        (e.g. the field-Jacobian products of ``MagneticMACE.field_linearization``)."""
        return self._node_energy(positions, magmoms, node_attrs, species, sender, receiver, shifts)

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
                # graphs without a volume (2D cells with a zero vector, clusters) carry no stress
                # target (config_arrays refuses one) and are masked out of the loss; dividing
                # them by 1 instead of 0 keeps inf/NaN out of the gradients of the whole batch
                volume = torch.where(volume > 0, volume, torch.ones_like(volume))
                out["stress"] = grads[k] / volume.view(-1, 1, 1)
        return out

    def _node_energy(self, positions, magmoms, node_attrs, species, sender, receiver, shifts):
        raise NotImplementedError


class MagneticMACEModel(EnergyModel):
    """The mMACE network. See the module docstring for the architecture.

    Parameters are the hyperparameters of :class:`~.hyperparameters.Hyperparameters` (unchecked
    here: build through :meth:`build`) plus ``z_table`` (atomic numbers, the species order of
    one-hot ``node_attrs``), ``soc`` and ``m_max`` as a list per species (μB). Settable by training: buffer ``atomic_energies`` (S,) eV, buffers ``scale`` and ``shift`` (eV).
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
        hidden = graded.from_labels(hidden_irreps, time_reversal_labels=self.soc)
        C = o3.Irreps(hidden_irreps).count(o3.Irrep(0, 1))
        if C == 0 or any(mul != C for mul, _, _ in hidden):
            raise ValueError(f"hidden_irreps must have the same multiplicity for every irrep incl. 0e, got {hidden_irreps}")
        if isinstance(correlation, int):
            correlation = [correlation] * num_interactions
        attr = GradedIrreps([(S, "0e", 1)])
        scalars = GradedIrreps([(C, "0e", 1)])
        energy = GradedIrreps([(1, "0e", 1)])

        # --- harmonics of bonds and moments with their (spatial, time-reversal) parities (graded.py)
        sh_r = graded.harmonics_of_bonds(max_ell)                     # Y_l(r̂): ((−1)^l, +)
        if self.soc:
            sh_m = graded.harmonics_of_moments(max_ell_m)              # Y_l(m̃): (+, (−1)^l), m axial
            odd = GradedIrreps([(C, (l, p), -1) for l in range(1, max_ell_odd + 1) for p in (1, -1)])
            message = (sh_r * C + odd).simplify()
        else:
            sh_m = GradedIrreps([(1, "0e", 1)])                        # only |m| enters on the nodes
            message = (sh_r * C).simplify()
        self.sh_r_irreps, self.sh_m_irreps = sh_r, sh_m
        self.hidden_irreps, self.message_irreps = hidden, message
        self.spherical_harmonics = o3.SphericalHarmonics(sh_r.irreps, normalize=True, normalization="component")
        self.node_embedding = LinearNodeEmbeddingBlock(attr.irreps, scalars.irreps)
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
        self.products = torch.nn.ModuleList()
        self.self_coupling = torch.nn.ModuleList()
        self.readouts = torch.nn.ModuleList()
        node = scalars
        for t in range(num_interactions):
            last = t == num_interactions - 1
            product_out = scalars if last else hidden
            # 1. sender coupling, on the nodes
            self.linear_up.append(graded.linear(node, node))
            # moment irreps already carried by the nodes keep C channels, new ones get M (cheaper edges)
            edge = (GradedIrreps([(C, ir, tau) for _, ir, tau in node])
                    + GradedIrreps([(M, ir, tau) for _, ir, tau in sh_m if (ir, tau) not in node.keys])).simplify()
            self.send.append(MomentCoupling(node, sh_m, edge, n_moment_feats))
            # 2. message
            mid, instructions = graded.tp_out_with_instructions(edge, sh_r, message)
            tp = o3.TensorProduct(edge.irreps, sh_r.irreps, mid.irreps, instructions=instructions,
                                  shared_weights=False, internal_weights=False)
            self.conv_tp.append(tp)
            self.conv_tp_weights.append(e3nn_nn.FullyConnectedNet([edge_dim] + list(radial_MLP) + [tp.weight_numel],
                                                                  torch.nn.functional.silu))
            self.linear.append(graded.linear(mid, message))
            if t == 0:
                self.first_skip = graded.tensor_product(message, attr, message)
            else:
                self.skip.append(graded.tensor_product(node, attr, product_out))
            # 3. product basis
            self.products.append(ProductBasis(message, product_out, correlation[t], S))
            # 4. self coupling
            # (last layer: the product gives scalars only, as in plain MACE; the atom's own moment then
            # couples to the message A_i itself, which keeps the direction coupling at node cost)
            out = scalars if last else hidden
            couple_in = message if (last and self.soc) else product_out
            self.self_coupling.append(MomentCoupling(couple_in, sh_m, out, n_moment_feats))
            # 5. readout (of the time-reversal-even invariants only)
            if last:
                self.readouts.append(NonLinearReadoutBlock(out.irreps, o3.Irreps(MLP_irreps), torch.nn.functional.silu,
                                                           o3.Irreps("0e")))
            else:
                self.readouts.append(graded.linear(out, energy))
            node = out
        self.avg_num_neighbors = float(avg_num_neighbors)
        self.r_max = float(r_max)

    @classmethod
    def build(cls, z_table, soc=True, dtype=torch.float64, seed=None, **hyperparameters) -> "MagneticMACEModel":
        """Construct for the atomic numbers ``z_table`` (species order) from ``hyperparameters``
        (:class:`~.hyperparameters.Hyperparameters`, defaults for those not given; ``m_max`` a
        number or {symbol: μB}), checked there (ConfigError naming the key); parameters in
        ``dtype``, initialised with ``torch.manual_seed(seed)`` when a seed is given."""
        from ase.data import chemical_symbols

        hp = Hyperparameters.from_values(
            {"elements": [chemical_symbols[int(z)] for z in z_table], "soc": soc, **hyperparameters},
            prefix="MagneticMACEModel.build: ", what="mMACE hyperparameters").as_dict()
        kw = {k: hp[k] for k in DEFAULTS}
        kw["m_max"] = m_max_per_species(hp["m_max"], hp["elements"])
        with warnings.catch_warnings(), default_dtype(torch.float64):
            warnings.simplefilter("ignore")
            if seed is not None:
                with torch.random.fork_rng():
                    torch.manual_seed(int(seed))
                    model = cls(z_table, soc=hp["soc"], **kw)
            else:
                model = cls(z_table, soc=hp["soc"], **kw)
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
            ls = [ir.l for _, ir, _ in self.sh_m_irreps]
            ym = o3.spherical_harmonics(ls, mt, normalize=False, normalization="component")
        else:
            ym = torch.ones(len(species), 1, dtype=mt.dtype, device=mt.device)
        return mt, u, feats, ym

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
            b = self.products[t](msg, sc, node_attrs)
            last = t == self.num_interactions - 1
            h = b + self.self_coupling[t](msg if (last and self.soc) else b, ym, mfeats)
            inter = inter + self.readouts[t](h).squeeze(-1)
        node_e = node_e + self.scale * inter + self.shift
        if self.landau_order > 0:
            powers = torch.stack([u ** (k + 1) for k in range(self.landau_order)], dim=-1)
            node_e = node_e + (self.landau[species] * powers).sum(-1)
        return node_e
