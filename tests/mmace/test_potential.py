"""MagneticMACE as a spinlat potential: files, errors, batching, datasets, ASE."""

import json

import numpy as np
import pytest

from conftest import bcc_fe

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

import spinlat as sl  # noqa: E402
from spinlat.errors import DeviceError, FileFormatError, InputError, NonFiniteError, UnknownElementError  # noqa: E402
from spinlat.potentials import MagneticMACE  # noqa: E402
from spinlat.potentials.mmace.graph import build_batch  # noqa: E402

from _tiny import TINY, _one_thread  # noqa: E402,F401  (autouse fixture)

@pytest.fixture(scope="module")
def pot():
    return MagneticMACE.create(["Fe"], soc=True, seed=2, **TINY)


def test_interface(pot):
    assert pot.cutoff == 4.0 and pot.local is False and pot.depends_on_magnitudes
    assert pot.elements == (26,) and pot.dtype == torch.float64
    json.dumps(pot.hyperparameters)
    assert pot.hyperparameters["elements"] == ["Fe"] and pot.hyperparameters["soc"] is True
    st = bcc_fe((2, 2, 2))
    ev = pot.compute(st)
    assert ev.forces.shape == (16, 3) and ev.magnetic_forces.shape == (16, 3) and ev.energies.shape == (16,)
    rows = np.array([1, 5])
    np.testing.assert_allclose(pot.local_fields(st, pot.neighbor_list(st), rows), ev.magnetic_forces[rows])
    # seeds make models reproducible
    again = MagneticMACE.create(["Fe"], soc=True, seed=2, **TINY)
    assert again.compute(st).energy == ev.energy


def test_save_load_round_trip(pot, tmp_path):
    st = bcc_fe((2, 2, 2), seed=3)
    path = tmp_path / "model.mmace"
    pot.save(path)
    back = MagneticMACE.load(path)
    a, b = pot.compute(st, stress=True), back.compute(st, stress=True)
    assert a.energy == b.energy
    for k in ("forces", "magnetic_forces", "stress", "energies"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
    assert back.hyperparameters == pot.hyperparameters
    f32 = MagneticMACE.load(path, dtype="float32")
    assert f32.dtype == torch.float32
    assert abs(f32.compute(st).energy - a.energy) < 1e-4 * max(1.0, abs(a.energy))


def test_tampered_and_foreign_files(pot, tmp_path):
    from safetensors.torch import load_file, save_file

    good = tmp_path / "good.mmace"
    pot.save(good)
    junk = tmp_path / "junk.mmace"
    junk.write_bytes(b"\x80\x04not a model" * 10)
    with pytest.raises(FileFormatError):
        MagneticMACE.load(junk)
    raw = bytearray(good.read_bytes())
    trunc = tmp_path / "trunc.mmace"
    trunc.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(FileFormatError):
        MagneticMACE.load(trunc)
    tensors = load_file(str(good))
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        meta = f.metadata()
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(foreign))
    with pytest.raises(FileFormatError, match="format"):
        MagneticMACE.load(foreign)
    wrong_shape = dict(tensors)
    key = next(k for k in wrong_shape if wrong_shape[k].ndim >= 1 and wrong_shape[k].numel() > 1)
    wrong_shape[key] = torch.zeros(wrong_shape[key].numel() + 1, dtype=wrong_shape[key].dtype)
    p = tmp_path / "shape.mmace"
    save_file(wrong_shape, str(p), metadata=meta)
    with pytest.raises(FileFormatError, match="shape"):
        MagneticMACE.load(p)
    missing = dict(tensors)
    missing.pop(key)
    p = tmp_path / "missing.mmace"
    save_file(missing, str(p), metadata=meta)
    with pytest.raises(FileFormatError, match="missing"):
        MagneticMACE.load(p)
    bad_meta = dict(meta, hyperparameters="{not json")
    p = tmp_path / "meta.mmace"
    save_file(tensors, str(p), metadata=bad_meta)
    with pytest.raises(FileFormatError):
        MagneticMACE.load(p)
    p = tmp_path / "version.mmace"
    save_file(tensors, str(p), metadata=dict(meta, version="99"))
    with pytest.raises(FileFormatError, match="version"):
        MagneticMACE.load(p)


def _header_of(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata(), {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def test_header_shapes_are_the_ones_the_hyperparameters_imply(pot, tmp_path):
    """implied_shapes agrees with every model built here (so load can trust it before building)."""
    from spinlat.potentials.mmace.potential import implied_shapes

    models = [pot, MagneticMACE.create(["Fe", "Ni"], soc=False, seed=1, **dict(TINY, num_interactions=3,
                                                                               correlation=[3, 2, 1],
                                                                               landau_order=0))]
    for m in models:
        path = tmp_path / "m.mmace"
        m.save(path)
        _, shapes = _header_of(path)
        implied = implied_shapes(m.hyperparameters)
        assert sum(v is not None for v in implied.values()) >= 10
        for name, want in implied.items():
            if want is None:
                assert name not in shapes, name
            else:
                assert len(shapes[name]) == len(want), name
                assert all(w is None or w == h for h, w in zip(shapes[name], want)), name


def test_tampered_hyperparameters_are_refused_from_the_header(pot, tmp_path, monkeypatch):
    """A small file whose metadata asks for a huge network is refused from the header and the
    hyperparameter limits alone: the network is never built."""
    from safetensors.torch import save_file

    good = tmp_path / "good.mmace"
    pot.save(good)
    meta, _ = _header_of(good)
    hp = json.loads(meta["hyperparameters"])

    def refuse_building(*a, **k):
        raise AssertionError("the network was built")

    monkeypatch.setattr(MagneticMACE, "_build", staticmethod(refuse_building))
    huge = dict(hp, hidden_irreps="1024x0e+1024x1o", radial_MLP=[4096, 4096, 4096], correlation=3)
    tiny_tensors = {"weight": torch.zeros(3)}
    p = tmp_path / "huge.mmace"
    save_file(tiny_tensors, str(p), metadata=dict(meta, hyperparameters=json.dumps(huge)))
    assert p.stat().st_size < 2000
    with pytest.raises(FileFormatError, match="missing tensor|shape"):
        MagneticMACE.load(p)
    # the real weights with hyperparameters that imply other shapes: named tensor and shapes
    from safetensors.torch import load_file

    tensors = load_file(str(good))
    for key, value, match in (("hidden_irreps", "64x0e+64x1o", "node_embedding"),
                              ("radial_MLP", [16, 16, 16], "conv_tp_weights"),
                              ("correlation", 4, "symmetric_product.prefix_4"),
                              ("max_ell", 3, "symmetric_product.first"),
                              ("num_interactions", 3, r"missing tensor \w+\.2\."),
                              ("num_moment_basis", 12, "weights.weight"),
                              ("MLP_irreps", "64x0e", "readouts")):
        p = tmp_path / f"{key}.mmace"
        save_file(tensors, str(p), metadata=dict(meta, hyperparameters=json.dumps(dict(hp, **{key: value}))))
        with pytest.raises(FileFormatError, match=match):
            MagneticMACE.load(p)
    # out of range or of the wrong type: named before anything else
    for key, value in (("max_ell", 50), ("correlation", 40), ("num_interactions", True), ("r_max", -1.0),
                       ("hidden_irreps", "8x0e+16x1o"), ("hidden_irreps", "1x5x"), ("radial_MLP", [10**6]),
                       ("elements", ["Fe", "Fe"]), ("soc", "yes"), ("m_max", float("inf")),
                       ("landau_order", 1.5), ("moment_channels", 10**7)):
        p = tmp_path / "range.mmace"
        save_file(tensors, str(p), metadata=dict(meta, hyperparameters=json.dumps(dict(hp, **{key: value}))))
        with pytest.raises(FileFormatError, match=key):
            MagneticMACE.load(p)
    for bad in ({k: v for k, v in hp.items() if k != "max_ell"}, dict(hp, surprise=1), [1, 2]):
        p = tmp_path / "keys.mmace"
        save_file(tensors, str(p), metadata=dict(meta, hyperparameters=json.dumps(bad)))
        with pytest.raises(FileFormatError, match="max_ell|surprise|mapping"):
            MagneticMACE.load(p)


def test_load_errors_name_the_problem(pot, tmp_path):
    with pytest.raises(InputError, match="missing.mmace.*does not exist"):
        MagneticMACE.load(tmp_path / "missing.mmace")
    with pytest.raises(InputError, match="is a directory, not a file"):
        MagneticMACE.load(tmp_path)
    path = tmp_path / "m.mmace"
    pot.save(path)
    with pytest.raises(InputError, match="'devcie'.*'device'"):
        MagneticMACE.load(path, devcie="cpu")
    with pytest.raises(InputError, match="'weights_only'"):
        MagneticMACE.load(path, weights_only=True)
    with pytest.raises(InputError, match="path"):
        MagneticMACE.load(5)
    with pytest.raises(InputError, match="dtype"):
        MagneticMACE.load(path, dtype="float16")


def test_create_checks_hyperparameters():
    for key, value in (("max_ell", -1), ("num_bessel", 0), ("correlation", [3]), ("r_max", "5"),
                       ("hidden_irreps", "8x1o"), ("MLP_irreps", "8x1o"), ("avg_num_neighbors", 0)):
        with pytest.raises(sl.errors.ConfigError, match=key):
            MagneticMACE.create(["Fe"], **dict(TINY, **{key: value}))
    with pytest.raises(sl.errors.ConfigError, match="soc"):
        MagneticMACE.create(["Fe"], soc="no", **TINY)


def test_bad_input(pot):
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError):
            MagneticMACE.create(["Fe"], device="cuda", **TINY)
    ni = sl.State([[0, 0, 0], [2.5, 0, 0]], [26, 28], moments=[2.2, 0.6])
    with pytest.raises(UnknownElementError, match="Ni"):
        pot.compute(ni)
    with pytest.raises(UnknownElementError):
        MagneticMACE.create(["Xx"], **TINY)
    atoms = bcc_fe((1, 1, 1)).to_ase()
    mag = np.ones((2, 3))
    mag[1, 2] = np.nan
    atoms.arrays["magmoms"] = mag
    with pytest.raises(NonFiniteError, match="magmoms"):
        build_batch([atoms], 4.0, [26])
    with pytest.raises(sl.errors.ConfigError):
        MagneticMACE.create(["Fe"], not_a_hyperparameter=3)


def test_batched_equals_single(pot):
    states = [bcc_fe((2, 2, 2), seed=s) for s in range(3)] + [bcc_fe((1, 2, 2), seed=9)]
    evs = pot.compute_batch(states, stress=True)
    for st, ev in zip(states, evs):
        one = pot.compute(st, stress=True)
        assert abs(one.energy - ev.energy) <= 1e-11 * abs(one.energy)
        np.testing.assert_allclose(ev.forces, one.forces, atol=1e-12)
        np.testing.assert_allclose(ev.magnetic_forces, one.magnetic_forces, atol=1e-12)
        np.testing.assert_allclose(ev.stress, one.stress, atol=1e-12)


def test_evaluate_dataset_and_atoms_input(pot):
    states = [bcc_fe((2, 2, 2), seed=s) for s in range(3)]
    data = []
    for st in states:
        ev = pot.compute(st)
        atoms = st.to_ase()
        atoms.arrays["magmoms"] = st.magnetic_moments
        atoms.info["energy"] = ev.energy
        atoms.arrays["forces"] = ev.forces
        atoms.arrays["magnetic_forces"] = ev.magnetic_forces
        data.append(atoms)
    res = pot.evaluate(data)
    assert set(res) == {"energy_rmse", "forces_rmse", "magnetic_forces_rmse"}
    assert all(v < 1e-9 for v in res.values())
    data[0].info["energy"] += 0.016  # 1 meV/atom on 16 atoms, one config of three
    assert np.isclose(pot.evaluate(data)["energy_rmse"], np.sqrt(1 / 3), rtol=1e-6)
    b = build_batch(data, 4.0, [26])
    assert b["energy_mask"].all() and b["forces"].shape == (48, 3) and b["stress_mask"].sum() == 0


def test_ase_calculator(pot):
    calc_mod = pytest.importorskip("spinlat.ase")
    st = bcc_fe((2, 2, 2), seed=4)
    atoms = st.to_ase()
    atoms.calc = calc_mod.SpinLatticeCalculator(pot)
    ev = pot.compute(st, stress=True)
    assert np.isclose(atoms.get_potential_energy(), ev.energy, rtol=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), ev.forces, atol=1e-12)
    np.testing.assert_allclose(atoms.get_stress(), ev.stress, atol=1e-12)
    np.testing.assert_allclose(atoms.calc.get_magnetic_forces(), ev.magnetic_forces, atol=1e-12)


def test_spin_lattice_nve_with_mmace_is_second_order(pot):
    """SpinLatticeNVE with a non-local mMACE potential: energy error O(dt²) (halving dt divides it
    by ≈ 4), spin lengths kept; the explicit midpoint spin step makes two model calls per step, the
    implicit one (default) at most three on average."""
    from spinlat.integrators import SpinLatticeNVE

    st = bcc_fe((2, 2, 2), seed=6)
    st = st.copy(velocities=np.random.default_rng(7).normal(0, 0.01, (len(st), 3)))
    calls = []
    inner = pot.model.forward

    def counting(*a, **k):
        calls.append(1)
        return inner(*a, **k)

    def energy(s):
        return pot.compute(s, forces=False, magnetic_forces=False).energy + s.kinetic_energy()

    e0 = energy(st)
    errs = []
    pot.model.forward = counting
    try:
        for dt in (1.0, 0.5):
            s, err = st, 0.0
            for _ in range(4):
                s = SpinLatticeNVE(dt).run(s, pot, int(round(5.0 / dt)))
                err = max(err, abs(energy(s) - e0))
            errs.append(err)
        calls.clear()
        SpinLatticeNVE(0.5, spin_step="explicit_midpoint").run(s, pot, 3)
        assert len(calls) == 2 * 3 + 1  # the initial evaluation, then two per step
        calls.clear()
        integ = SpinLatticeNVE(0.5)
        s = integ.run(s, pot, 8)
        first = integ.statistics["model_calls"]
        s = integ.run(s, pot, 16)
    finally:
        del pot.model.forward
    assert len(calls) == first + integ.statistics["model_calls"]  # every model call is counted
    assert integ.statistics["model_calls"] <= 3 * 16, integ.statistics  # continued run: no initial evaluation
    assert 3.0 < errs[0] / errs[1] < 5.5, errs
    assert np.abs(np.linalg.norm(s.spins, axis=1) - 1).max() < 1e-12


def test_field_jacobian_vector_matches_finite_differences(pot):
    """∂h/∂m · v by the double backward equals the central difference of the fields along v (m =
    moment · spin moved as a vector: magnitudes and directions), to 1e-7 relative; K vectors in one
    batched backward give the products one by one; the fields are compute's; bad vectors raise."""
    rng = np.random.default_rng(4)
    st = bcc_fe((2, 2, 2))
    n = len(st)
    st = st.copy(spins=rng.normal(size=(n, 3)), moments=2.2 + 0.1 * rng.normal(size=n),
                 positions=st.positions + rng.normal(0, 0.05, (n, 3)))
    m = st.moments[:, None] * st.spins
    vs = rng.normal(size=(3, n, 3))
    h, jv = pot.field_jacobian_vector(st, vs)
    np.testing.assert_allclose(h, pot.compute(st, forces=False).magnetic_forces, rtol=0, atol=1e-13)

    def fields(mm):
        mu = np.linalg.norm(mm, axis=1)
        return pot.compute(st.copy(moments=mu, spins=mm / mu[:, None]), forces=False).magnetic_forces

    eps = 1e-5
    for v, p in zip(vs, jv):
        fd = (fields(m + eps * v) - fields(m - eps * v)) / (2 * eps)
        assert np.abs(fd - p).max() < 1e-7 * np.abs(p).max(), np.abs(fd - p).max() / np.abs(p).max()
    one = pot.field_jacobian_vector(st, vs[1])[1]
    np.testing.assert_allclose(one, jv[1], rtol=0, atol=1e-12 * np.abs(jv[1]).max())
    # symmetric (a Hessian): u·(J v) = v·(J u)
    assert abs(np.sum(vs[0] * jv[1]) - np.sum(vs[1] * jv[0])) < 1e-12 * np.abs(jv).max() * n
    for bad in (np.zeros((n, 2)), np.zeros((0, n, 3)), np.full((n, 3), np.nan)):
        with pytest.raises(InputError):
            pot.field_jacobian_vector(st, bad)


def test_non_magnetic_atoms_get_zero_magnetic_forces(pot):
    """An atom with moment 0 is non-magnetic: h = 0 there, as for every potential (the model's
    −∂E/∂m of it, the pull of its magnetic neighbours, came out); the other atoms' h are −∂E/∂m
    by finite differences, through compute and compute_many alike."""
    st = bcc_fe((1, 1, 1), rattle=0.05, seed=4)
    st = st.copy(moments=np.array([2.2, 0.0]))
    ev = pot.compute(st)
    np.testing.assert_array_equal(ev.magnetic_forces[1], 0.0)
    np.testing.assert_allclose(pot.compute_many([st, st])[1].magnetic_forces, ev.magnetic_forces, rtol=1e-12, atol=0)
    m, d = st.magnetic_moments, 1e-5
    for c in range(3):
        e = []
        for sign in (1, -1):
            mm = m.copy()
            mm[0, c] += sign * d
            e.append(pot.compute(st.copy(spins=mm / np.linalg.norm(mm, axis=1, keepdims=True).clip(1e-300),
                                         moments=np.linalg.norm(mm, axis=1))).energy)
        assert ev.magnetic_forces[0, c] == pytest.approx(-(e[0] - e[1]) / (2 * d), rel=1e-5, abs=1e-9)


def test_loading_a_checkpoint_or_graph_cache_as_a_model_says_what_it_is(tmp_path):
    """A user pointing MagneticMACE.load at the training checkpoint or the graph cache (both
    safetensors files of spinlat) is told what the file is and where the model is."""
    from safetensors.torch import save_file

    for marker, words in (("spinlat-mmace-checkpoint", "training checkpoint.*output"),
                          ("spinlat-mmace-graphs", "cache of training-data graphs"),
                          ("spinlat-mmace-reference", "ReferenceMagneticMACE.load")):
        path = tmp_path / f"{marker}.safetensors"
        save_file({"x": torch.zeros(1)}, str(path), metadata={"format": marker})
        with pytest.raises(FileFormatError, match=f"not a spinlat mMACE model file.*{words}"):
            MagneticMACE.load(path)


def test_device_and_dtype_cannot_be_assigned():
    """``pot.dtype = torch.float32`` (or ``pot.device``) was accepted and left the model's weights
    as they were; now refused, saying to build a new one (load/create take dtype= and device=)."""
    from spinlat.errors import FixedParameterError

    pot = MagneticMACE.create(["Fe"], soc=True, seed=2, **TINY)
    for name in ("dtype", "device", "cutoff", "soc"):
        with pytest.raises(FixedParameterError, match=rf"MagneticMACE\.{name} is fixed"):
            setattr(pot, name, getattr(pot, name))
