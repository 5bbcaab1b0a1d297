"""Real-data shapes of mMACE training: labels missing per configuration (energies only,
magnetic forces for some configurations), labels and moments where ASE keeps them, the masked
loss against a hand computation. Budgets in epochs, fixed seeds, one torch thread."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402

from spinlat import datasets  # noqa: E402
from spinlat.potentials import MagneticMACE  # noqa: E402
from spinlat.potentials.mmace.graph import build_batch  # noqa: E402
from spinlat.training import train  # noqa: E402
from spinlat.training.data import collate, graphs_of  # noqa: E402
from spinlat.training.loss import masked_loss  # noqa: E402

from _tiny import _one_thread  # noqa: E402,F401  (autouse fixture)

warnings.filterwarnings("ignore", category=UserWarning)

TINY = dict(r_max=4.0, max_ell=1, hidden_irreps="4x0e+4x1o", radial_MLP=[8], num_bessel=4, correlation=2,
            MLP_irreps="4x0e", num_moment_basis=3, num_exchange_basis=2)
WEIGHTS = {"energy": 100.0, "forces": 1.0, "magnetic_forces": 10.0, "stress": 100.0}


@pytest.fixture(scope="module")
def fe():
    return datasets.teacher("Fe", 6, seed=21)


def _without(atoms, *keys):
    at = atoms.copy()
    for key in keys:
        at.info.pop(key, None)
        at.arrays.pop(key, None)
    return at


@pytest.fixture
def deterministic():
    det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(det)


def test_energies_only_trains_and_the_held_out_energy_error_falls(deterministic):
    """A constrained spin-disorder-like set: energies only. The held-out energy error of the
    trained model is well below that of the initial model (E0 + Landau least squares), and no
    force is ever computed (none is labelled). Measured: 63.2 → 33.3 meV/atom in 30 epochs."""
    data = [_without(a, "forces", "magnetic_forces", "stress") for a in datasets.teacher("Fe", 24, seed=3)]
    test_set = [_without(a, "forces", "magnetic_forces", "stress") for a in datasets.teacher("Fe", 8, seed=4)]
    kw = dict(seed=0, batch_size=4, lr=0.01, progress=False, **TINY)
    start = MagneticMACE.train(data, epochs=0, **kw)  # the public entry reaches spinlat.training
    pot = train(data, epochs=30, **kw)
    e0, e30 = start.evaluate(test_set), pot.evaluate(test_set)
    assert np.isnan(e30["forces_rmse"]) and np.isnan(e30["magnetic_forces_rmse"])
    assert pot.training_summary["labels"]["train"] == {"energy": 22, "forces": 0, "magnetic_forces": 0, "stress": 0}
    print("held-out energy RMSE, meV/atom: initial", e0["energy_rmse"], "after 30 epochs", e30["energy_rmse"])
    assert e30["energy_rmse"] < 0.7 * e0["energy_rmse"]
    # the same run again: the same digits (epochs, seeds, one thread)
    again = train(data, epochs=30, **kw)
    assert again.evaluate(test_set)["energy_rmse"] == e30["energy_rmse"]


def _batch_and_output(configs, pot):
    batch = collate(graphs_of(configs, pot.cutoff, pot.z_table))
    out = pot.model(batch, compute_forces=True, compute_magnetic_forces=True, compute_stress=True, training=False)
    return batch, {k: (v.detach() if v is not None else None) for k, v in out.items()}


def test_masked_loss_of_a_mixture_equals_the_hand_computation(fe):
    """Four configurations, the 2nd and 4th without magnetic forces, the 3rd without forces and
    stress, weights ω = (1, 2, 0.5, 1): each term is the ω-weighted mean over the entries that
    carry the label."""
    pot = MagneticMACE.create(["Fe"], soc=True, seed=1, **TINY)
    configs = [fe[0].copy(), _without(fe[1], "magnetic_forces"), _without(fe[2], "forces", "stress"),
               _without(fe[3], "magnetic_forces")]
    for at, w in zip(configs, (1.0, 2.0, 0.5, 1.0)):
        at.info["weight"] = w
    batch, out = _batch_and_output(configs, pot)
    loss = float(masked_loss(out, batch, WEIGHTS))

    omega = [1.0, 2.0, 0.5, 1.0]
    e = [float(out["energy"][c]) for c in range(4)]
    off = np.cumsum([0] + [len(a) for a in configs])
    pred = {k: out[k].numpy() for k in ("forces", "magnetic_forces", "stress")}
    sq_e = [omega[c] * ((e[c] - a.info["energy"]) / len(a)) ** 2 for c, a in enumerate(configs)]
    f_terms, h_terms, s_terms = [], [], []
    for c, a in enumerate(configs):
        sl_ = slice(off[c], off[c + 1])
        if "forces" in a.arrays:
            f_terms += list(omega[c] * ((pred["forces"][sl_] - a.arrays["forces"]) ** 2).mean(1))
        if "magnetic_forces" in a.arrays:
            magnetic = np.linalg.norm(a.arrays["magmoms"], axis=1) > 0
            d = ((pred["magnetic_forces"][sl_] - a.arrays["magnetic_forces"]) ** 2).mean(1)
            h_terms += list(omega[c] * d[magnetic])
        if "stress" in a.info:
            v = a.info["stress"]
            ref = np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
            s_terms.append(omega[c] * ((pred["stress"][c] - ref) ** 2).mean())
    assert len(f_terms) == sum(len(a) for a in configs) - len(configs[2])
    assert len(h_terms) == len(configs[0]) + len(configs[2])
    hand = (100.0 * np.mean(sq_e) + 1.0 * np.mean(f_terms) + 10.0 * np.mean(h_terms) + 100.0 * np.mean(s_terms))
    assert loss == pytest.approx(hand, rel=1e-12, abs=0)
    # a batch with no label the weights use gives no loss (no optimiser step)
    assert masked_loss(out, batch, {"energy": 0.0, "forces": 0.0, "magnetic_forces": 0.0, "stress": 0.0}) is None


def test_missing_labels_are_never_zeros(fe):
    """The placeholder values behind a missing label do not enter the loss, the metrics or the
    evaluation; a force labelled zero does (so a missing force taken as 0 would fail here)."""
    pot = MagneticMACE.create(["Fe"], soc=True, seed=1, **TINY)
    configs = [fe[0].copy(), _without(fe[1], "forces", "magnetic_forces"), fe[2].copy()]
    batch, out = _batch_and_output(configs, pot)
    assert batch["forces_mask"].tolist() == [True, False, True]
    loss = float(masked_loss(out, batch, WEIGHTS))
    rows = batch["batch"] == 1
    junk = dict(batch)
    junk["forces"] = batch["forces"].clone()
    junk["forces"][rows] = 1e3 * torch.randn(int(rows.sum()), 3, dtype=torch.float64)
    junk["magnetic_forces"] = batch["magnetic_forces"].clone()
    junk["magnetic_forces"][rows] = -7.0
    assert float(masked_loss(out, junk, WEIGHTS)) == loss
    # the same configuration with its forces labelled zero is another loss
    zero = configs[1].copy()
    zero.arrays["forces"] = np.zeros((len(zero), 3))
    zbatch, zout = _batch_and_output([configs[0], zero, configs[2]], pot)
    assert abs(float(masked_loss(zout, zbatch, WEIGHTS)) - loss) > 1e-6 * loss
    # evaluation: the forces RMSE is that of the configurations that carry forces
    both = pot.evaluate([configs[0], configs[2]])
    mixed = pot.evaluate(configs)
    assert mixed["forces_rmse"] == pytest.approx(both["forces_rmse"], rel=1e-12)
    assert mixed["magnetic_forces_rmse"] == pytest.approx(both["magnetic_forces_rmse"], rel=1e-12)
    assert mixed["energy_rmse"] != pytest.approx(both["energy_rmse"], rel=1e-6)  # energy of all three


def test_a_mixture_trains_with_magnetic_forces_on_half_the_configurations(deterministic):
    """Half the configurations without magnetic forces, a quarter without forces: the run
    counts the labels, trains (the training loss falls) and reports every RMSE."""
    data = datasets.teacher("Fe", 16, seed=7)
    data = [_without(a, "magnetic_forces") if k % 2 else a for k, a in enumerate(data)]
    data = [_without(a, "forces") if k % 4 == 1 else a for k, a in enumerate(data)]
    pot = train(data, valid=datasets.teacher("Fe", 4, seed=8), epochs=4, seed=0, progress=False, **TINY)
    assert pot.training_summary["labels"]["train"] == {"energy": 16, "forces": 12, "magnetic_forces": 8,
                                                         "stress": 16}
    losses = [row["train_loss"] for row in pot.training_history]
    assert losses[-1] < losses[0]
    assert all(np.isfinite(pot.training_summary["valid"][k]) for k in ("energy_rmse", "forces_rmse",
                                                                       "magnetic_forces_rmse", "stress_rmse"))


def test_labels_and_moments_read_wherever_ase_keeps_them(tmp_path, fe):
    """A data set written by spinlat and read back by plain ase.io.read keeps its labels in a
    SinglePointCalculator and its moments in initial_magmoms / calculator results: the graphs are
    the same as from the original atoms. Moments only in initial_magmoms or only in a
    calculator's results are moments too (not a non-magnetic configuration)."""
    import ase.io

    from spinlat.io import write_extxyz

    path = tmp_path / "fe.extxyz"
    write_extxyz(path, fe[:3])
    plain = ase.io.read(path, index=":")
    assert plain[0].calc is not None and "forces" not in plain[0].arrays  # labels as calculator results
    a = build_batch(fe[:3], 4.0, [26])
    b = build_batch(plain, 4.0, [26])
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # moments only as initial magnetic moments, or only as a calculator's results
    m = fe[0].arrays["magmoms"]
    only_initial = _without(fe[0], "magmoms")
    only_initial.set_initial_magnetic_moments(m)
    in_calc = _without(fe[0], "magmoms", "initial_magmoms", "energy", "forces")
    in_calc.calc = SinglePointCalculator(in_calc, magmoms=m, energy=fe[0].info["energy"])
    for at in (only_initial, in_calc):
        g = build_batch([at], 4.0, [26])
        np.testing.assert_array_equal(g["magmoms"].numpy(), m)
    g = build_batch([in_calc], 4.0, [26])
    assert g["energy_mask"].item() and float(g["energy"][0]) == fe[0].info["energy"]
    assert not g["forces_mask"].item()  # no forces anywhere: absent, not zero
    # a data-set file for training and evaluation alike
    pot = train(str(path), valid=fe[3:5], epochs=1, seed=0, progress=False, **TINY)
    assert pot.training_summary["labels"]["train"]["forces"] == 3
    assert pot.evaluate(str(path)) == pot.evaluate(fe[:3])


def test_an_explicit_weight_without_labels_warns(fe):
    data = [_without(a, "stress") for a in fe[:4]]
    with pytest.warns(UserWarning, match="stress_weight=50 was given, but no training configuration carries stress"):
        train(data, valid=fe[4:6], epochs=0, stress_weight=50.0, progress=False, **TINY)


def test_spinlat_train_sets_loss_weights_and_trains_on_energies_only(tmp_path, capsys):
    """`spinlat train` with per-label loss weights on an energies-only extxyz file."""
    import json

    from spinlat.cli import check_train_config, main
    from spinlat.errors import ConfigError
    from spinlat.io import write_extxyz

    write_extxyz(tmp_path / "e.extxyz", [_without(a, "forces", "magnetic_forces", "stress")
                                         for a in datasets.teacher("Fe", 8, seed=2)])
    cfg = tmp_path / "train.yaml"
    cfg.write_text("""
train: e.extxyz
model: {soc: false, r_max: 4.0, max_ell: 1, hidden_irreps: 4x0e+4x1o, radial_MLP: [8], num_bessel: 4,
        correlation: 2, MLP_irreps: 4x0e}
training: {epochs: 2, batch_size: 2, seed: 0, energy_weight: 1, forces_weight: 10, magnetic_forces_weight: 0}
output: m.mmace
""")
    checked = check_train_config({"train": "e.extxyz", "output": "m", "training": {"energy_weight": 1,
                                                                                  "stress_weight": 0}})
    assert checked["training"] == {"energy_weight": 1.0, "stress_weight": 0.0, "checkpoint_dir": "m.checkpoints"}
    with pytest.raises(ConfigError, match="training.forces_weight: expected a number in"):
        check_train_config({"train": "e.extxyz", "output": "m", "training": {"forces_weight": -1}})
    with pytest.raises(ConfigError, match="training.energy_weigth: unknown key .*did you mean 'energy_weight'"):
        check_train_config({"train": "e.extxyz", "output": "m", "training": {"energy_weigth": 1}})
    capsys.readouterr()
    assert main(["train", str(cfg), "--no-progress"]) == 0
    err = capsys.readouterr().err   # --no-progress: no bars, but the per-epoch table (a batch job's log)
    lines = err.splitlines()
    assert any(line.split()[:2] == ["epoch", "loss"] for line in lines)
    assert [line.split()[0] for line in lines if line.split() and line.split()[0] in ("1", "2")] == ["1", "2"]
    assert "epoch 1:" not in err   # no tqdm bar
    report = json.loads((tmp_path / "m.mmace.metrics.json").read_text())
    assert report["summary"]["labels"]["train"]["forces"] == 0 and len(report["history"]) == 2
    assert not MagneticMACE.load(tmp_path / "m.mmace").soc
    # the same command with another seed: the checkpoint left by the first run is another run's;
    # the refusal says how to train afresh from the config, and the model file is kept
    before = (tmp_path / "m.mmace").read_bytes()
    cfg.write_text(cfg.read_text().replace("seed: 0", "seed: 1"))
    capsys.readouterr()
    assert main(["train", str(cfg), "--no-progress", "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "belongs to another run" in err and "training.resume: false" in err and "m.mmace.checkpoints" in err
    assert (tmp_path / "m.mmace").read_bytes() == before


def test_moments_as_magnitudes_with_a_spins_column_point_along_it(tmp_path, fe):
    """An extxyz file whose moments are magnitudes (N,) with the directions in a ``spins`` column
    (as State.from_ase reads it) gives the moment vectors, not moments along +z; (N, 3) moments
    that disagree with the column are an error naming the configuration."""
    import ase.io

    from spinlat import State
    from spinlat.errors import InputError

    m = fe[0].arrays["magmoms"]
    at = _without(fe[0], "magmoms", "initial_magmoms")
    size = np.linalg.norm(m, axis=1)
    at.set_initial_magnetic_moments(size)
    at.arrays["spins"] = m / size[:, None]
    ase.io.write(tmp_path / "spins.extxyz", [at], format="extxyz")
    back = ase.io.read(tmp_path / "spins.extxyz", index=":")
    g = build_batch(back, 4.0, [26])
    np.testing.assert_allclose(g["magmoms"].numpy(), m, atol=1e-8)
    np.testing.assert_allclose(State.from_ase(back[0]).magnetic_moments, m, atol=1e-8)
    relabelled = datasets.TeacherHamiltonian().label(back[0].copy())   # the teacher reads them alike
    np.testing.assert_allclose(relabelled.arrays["magmoms"], m, atol=1e-8)
    np.testing.assert_allclose(relabelled.arrays["magnetic_forces"], fe[0].arrays["magnetic_forces"], atol=1e-6)
    bad = at.copy()
    del bad.arrays["initial_magmoms"]
    bad.set_initial_magnetic_moments(np.tile([0.0, 0.0, 2.0], (len(bad), 1)))
    with pytest.raises(InputError, match="configuration 0.*spins"):
        build_batch([bad], 4.0, [26])


def test_a_data_set_whose_labels_hide_under_other_names_is_refused_naming_them(tmp_path, fe):
    """Labels stored under mace's names (REF_energy, REF_forces): evaluate returned all NaN
    silently; it and training now refuse, naming what the configuration holds."""
    from spinlat.errors import ConfigError, InputError

    hidden = []
    for at in fe[:2]:
        at = at.copy()
        at.info["REF_energy"] = at.info.pop("energy")
        at.arrays["REF_forces"] = at.arrays.pop("forces")
        for key in ("magnetic_forces",):
            at.arrays.pop(key)
        at.info.pop("stress")
        hidden.append(at)
    model = MagneticMACE.create(elements=["Fe"], seed=0, **TINY)
    with pytest.raises(InputError, match="no configuration carries a label.*REF_energy.*REF_forces"):
        model.evaluate(hidden)
    with pytest.raises(InputError, match="empty"):
        model.evaluate([])
    with pytest.raises(ConfigError, match="configuration 0 carries no label.*REF_energy"):
        train(hidden, epochs=1, seed=0, progress=False, **TINY)
    # one labelled configuration is enough: the others' absent labels are left out, not refused
    mixed = [hidden[0], fe[2]]
    assert np.isfinite(model.evaluate(mixed)["energy_rmse"])
    assert model.evaluate(mixed) == model.evaluate([fe[2]])
