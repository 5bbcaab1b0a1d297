"""mMACE with users' own DFT data: collinear magnetic-force labels (one number per atom), total
vs per-atom energies, moments under the keys other MLIP projects and readers use. Tiny models,
fixed seeds, one torch thread."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

from spinlat import datasets  # noqa: E402
from spinlat.errors import ShapeError  # noqa: E402
from spinlat.potentials import MagneticMACE  # noqa: E402
from spinlat.potentials.mmace.graph import config_arrays  # noqa: E402
from spinlat.training.data import collate, graphs_of  # noqa: E402
from spinlat.training.loss import masked_loss  # noqa: E402

from _tiny import _one_thread  # noqa: E402,F401  (autouse fixture)

TINY = dict(r_max=4.0, max_ell=1, hidden_irreps="4x0e+4x1o", radial_MLP=[8], num_bessel=4, correlation=2,
            MLP_irreps="4x0e", num_moment_basis=3, num_exchange_basis=2)


@pytest.fixture(scope="module")
def fe():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return datasets.teacher("Fe", 4, seed=31)


def _collinear_label(at):
    """The configuration with its magnetic forces replaced by their component along each moment (N,)."""
    at = at.copy()
    m = at.arrays["magmoms"]
    at.arrays["magnetic_forces"] = np.einsum("ik,ik->i", at.arrays["magnetic_forces"], m) / np.linalg.norm(m, axis=1)
    return at


def test_a_collinear_magnetic_force_label_is_the_component_along_the_moment():
    """A collinear DFT data set: signed moments (N,) along z and one magnetic force per atom (N,),
    the force along the moment (−∂E/∂|m|). It was refused (shape (N, 3) required); it is read as
    h·m̂ along m̂ (so along −z for a negative moment), and atoms without a moment carry nothing."""
    from ase.build import bulk

    at = bulk("Fe", "bcc", a=2.87, cubic=True).repeat((1, 1, 2))
    at.arrays["magmoms"] = np.array([2.2, -2.1, 0.0, 1.9])
    at.arrays["magnetic_forces"] = np.array([0.3, 0.4, 0.7, -0.2])
    at.info["energy"] = -33.0
    got = config_arrays(at)
    np.testing.assert_array_equal(got["magnetic_forces"], [[0, 0, 0.3], [0, 0, -0.4], [0, 0, 0], [0, 0, -0.2]])
    assert got["magnetic_forces_longitudinal"] is True
    at.arrays["magnetic_forces"] = np.zeros(3)
    with pytest.raises(ShapeError, match=r"magnetic_forces must have shape \(4, 3\), or \(4,\) for the component"):
        config_arrays(at)


def _batch_and_output(configs, pot):
    batch = collate(graphs_of(configs, pot.cutoff, pot.z_table))
    out = pot.model(batch, compute_forces=True, compute_magnetic_forces=True, compute_stress=True, training=False)
    return batch, {k: (v.detach() if v is not None else None) for k, v in out.items()}


def test_collinear_magnetic_forces_enter_the_loss_and_errors_along_the_moment_only(fe):
    """Configuration 0 with a vector label, 1 with the collinear label (N,): the loss term and the
    RMSE of 1 are those of the component along the moment, (Δh·m̂)² with one component per atom
    (a vector label: |Δh|²/3 per atom, three components)."""
    pot = MagneticMACE.create(["Fe"], soc=True, seed=1, **TINY)
    configs = [fe[0].copy(), _collinear_label(fe[1])]
    batch, out = _batch_and_output(configs, pot)
    assert batch["magnetic_forces_longitudinal"].tolist() == [False, True]
    weights = {"energy": 0.0, "forces": 0.0, "magnetic_forces": 10.0, "stress": 0.0}
    loss = float(masked_loss(out, batch, weights))
    h = out["magnetic_forces"].numpy()
    n0 = len(configs[0])
    m1 = configs[1].arrays["magmoms"]
    along = np.einsum("ik,ik->i", h[n0:], m1) / np.linalg.norm(m1, axis=1)
    sq_vec = ((h[:n0] - configs[0].arrays["magnetic_forces"]) ** 2).sum(1)
    sq_col = (along - configs[1].arrays["magnetic_forces"]) ** 2
    assert loss == pytest.approx(10.0 * np.mean(np.concatenate([sq_vec / 3, sq_col])), rel=1e-12, abs=0)
    # evaluate: the RMSE over the labelled components (3 per vector atom, 1 per collinear atom)
    got = pot.evaluate(configs)["magnetic_forces_rmse"]
    assert got == pytest.approx(1000 * np.sqrt((sq_vec.sum() + sq_col.sum()) / (3 * n0 + len(sq_col))), rel=1e-9)
    assert pot.evaluate(configs[1:])["magnetic_forces_rmse"] == pytest.approx(1000 * np.sqrt(np.mean(sq_col)),
                                                                             rel=1e-9)


def test_training_on_collinear_magnetic_forces_runs_and_fits_them(fe, tmp_path):
    """Training on collinear labels (with the graph cache, written and read back) counts them and
    lowers their error: the longitudinal RMSE after 6 epochs is below the initial model's."""
    from spinlat.training import train

    data = [_collinear_label(a) for a in fe]
    kw = dict(seed=0, batch_size=2, lr=0.01, progress=False, cache_dir=str(tmp_path), energy_weight=1.0,
              magnetic_forces_weight=100.0, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = train(data, valid=data, epochs=0, **kw)
        pot = train(data, valid=data, epochs=6, **kw)
    assert pot.training_summary["labels"]["train"]["magnetic_forces"] == 4
    assert pot.evaluate(data)["magnetic_forces_rmse"] < start.evaluate(data)["magnetic_forces_rmse"]


def _sized_fe_data(per_atom, with_isolated=True, seed=0):
    """bcc Fe of 2, 4, 16 and 54 atoms (and an isolated Fe atom at -3.4 eV), energies -8.2 eV/atom
    with noise: stored as totals or, as some projects write them, per atom."""
    from ase import Atoms
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    out = []
    for reps in [(1, 1, 1), (2, 1, 1), (2, 2, 2), (3, 3, 3), (1, 1, 1), (2, 2, 2)]:
        at = bulk("Fe", "bcc", a=2.87, cubic=True).repeat(reps)
        at.rattle(0.01, seed=int(rng.integers(1000)))
        at.arrays["magmoms"] = np.tile([0.0, 0.0, 2.2], (len(at), 1))
        e = -8.2 + 0.03 * rng.standard_normal()
        at.info["energy"] = e if per_atom else e * len(at)
        out.append(at)
    if with_isolated:
        atom = Atoms("Fe", positions=[[5, 5, 5]], cell=np.eye(3) * 10, pbc=False)
        atom.arrays["magmoms"] = np.array([[0.0, 0.0, 4.0]])
        atom.info["energy"] = -3.4
        out.append(atom)
    return out


def test_per_atom_energies_in_info_energy_are_refused_naming_the_option():
    """Energies per atom stored as info['energy'] (as some projects write them) were trained on as
    totals without a word (per-atom errors of ~8 eV/N). Over configurations of 2...54 atoms they are
    refused, naming energy_label; true totals (with an isolated atom among them) pass; with
    energy_label='per_atom' they are read as ε·N."""
    from spinlat.errors import ConfigError
    from spinlat.training import train
    from spinlat.training.loop import prepare_data
    from spinlat.training.options import TrainingOptions

    per_atom = _sized_fe_data(per_atom=True)
    with pytest.raises(ConfigError, match=r"train dataset: the energies look like energies per atom.*"
                                          r"2, 4, 16, 54 atoms.*energy_label: per_atom"):
        train(per_atom, valid=per_atom, epochs=0, progress=False, **TINY)
    opts = TrainingOptions.from_values({"energy_label": "per_atom"})
    data = prepare_data(per_atom, None, opts)
    for at in data.train + data.valid:
        src = next(a for a in per_atom if a.positions.shape == at.positions.shape and np.all(a.positions == at.positions))
        assert at.info["energy"] == src.info["energy"] * len(src)
    assert per_atom[2].info["energy"] > -9  # the user's atoms are not changed
    # totals (the isolated atom is the same under both readings and does not mislead the check)
    totals = prepare_data(_sized_fe_data(per_atom=False), None, TrainingOptions.from_values({}))
    assert sorted(len(a) for a in totals.train + totals.valid) == [1, 2, 2, 4, 16, 16, 54]
    # a user sure of their totals can switch the check off
    prepare_data(per_atom, None, TrainingOptions.from_values({"check_energies": False}))


def test_evaluate_refuses_per_atom_energies_and_reads_them_when_told():
    from spinlat.errors import InputError

    pot = MagneticMACE.create(["Fe"], soc=True, seed=1, **TINY)
    per_atom, totals = _sized_fe_data(per_atom=True), _sized_fe_data(per_atom=False)
    with pytest.raises(InputError, match="MagneticMACE.evaluate: dataset: the energies look like energies per "
                                         "atom.*energy_label='per_atom'"):
        pot.evaluate(per_atom)
    assert pot.evaluate(per_atom, energy_label="per_atom")["energy_rmse"] == pytest.approx(
        pot.evaluate(totals)["energy_rmse"], rel=1e-12)


def test_the_energy_check_keeps_quiet_where_sizes_cannot_tell_and_on_alloys():
    """One size only (or single atoms): no verdict. An FeCo set of several sizes and compositions
    with totals passes; the same set per atom is caught."""
    from ase.build import bulk

    from spinlat.potentials.mmace.labels import per_atom_energy_evidence

    same = [a for a in _sized_fe_data(per_atom=True, with_isolated=False) if len(a) == 16]
    assert per_atom_energy_evidence(same) is None
    rng = np.random.default_rng(3)
    alloys = []
    for reps in [(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2), (3, 2, 2), (3, 3, 2)]:
        at = bulk("Fe", "bcc", a=2.85, cubic=True).repeat(reps)
        at.numbers[rng.random(len(at)) < 0.4] = 27
        x = np.mean(at.numbers == 27)
        alloys.append((at, -8.2 * (1 - x) - 7.1 * x + 0.02 * rng.standard_normal()))
    for at, eps in alloys:
        at.info["energy"] = eps * len(at)
    assert per_atom_energy_evidence([a for a, _ in alloys])[0] is False
    for at, eps in alloys:
        at.info["energy"] = eps
    looks, rms_total, rms_per_atom, sizes = per_atom_energy_evidence([a for a, _ in alloys])
    assert looks and rms_per_atom < 0.05 < rms_total and sizes == [2, 4, 8, 16, 24, 36]


def test_a_spin_polarised_vasprun_without_moments_is_named():
    """ASE's vasprun.xml reader keeps the INCAR (ISPIN, MAGMOM) but reads no moment per atom: an
    ISPIN = 2 run trained silently as non-magnetic. from_ase and the training inputs now say so
    and point to the OUTCAR; an ISPIN = 1 run stays quiet."""
    from pathlib import Path

    import ase
    import ase.io

    import spinlat as sl
    from spinlat.potentials.mmace.labels import input_moments

    path = Path(ase.__file__).parent / "test" / "testdata" / "vasp" / "vasprun_pstress.xml"
    if not path.is_file():
        pytest.skip("ASE's test data (a vasprun.xml) are not installed")
    atoms = ase.io.read(path)
    assert atoms.calc.parameters["ispin"] == 1 and "magmoms" not in atoms.calc.results
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.State.from_ase(atoms)
    atoms.calc.parameters["ispin"] = 2
    for read in (sl.State.from_ase, input_moments):
        with pytest.warns(UserWarning, match=r"spin-polarised VASP run \(calculator parameters ISPIN = 2\) but carry no "
                                             r"moment per atom: ASE's vasprun.xml reader reads none.*OUTCAR"):
            read(atoms)


def _isolated(symbol, energy, moment):
    from ase import Atoms

    atom = Atoms(symbol, positions=[[0.0, 0.0, 0.0]], cell=np.eye(3) * 20.0, pbc=True)
    atom.arrays["magmoms"] = np.array([[0.0, 0.0, moment]])
    atom.info["energy"] = energy
    atom.info["config_type"] = "IsolatedAtom"
    return atom


def test_isolated_atoms_give_the_E0s_when_asked_and_are_named_otherwise(fe):
    """mace's data sets mark the isolated atoms config_type=IsolatedAtom: mace_run_train takes E0 from
    them. spinlat trained them silently as ordinary configurations with least-squares E0s; it now
    says so, and E0s='isolated' takes E0 = their energy exactly (they stay in the training set: the
    free atom's energy at its moment is E0 plus the one-body term the model learns)."""
    from spinlat.errors import ConfigError
    from spinlat.training import train

    data = list(fe) + [_isolated("Fe", -3.4, 4.0)]
    kw = dict(epochs=0, progress=False, seed=0, **TINY)
    with pytest.warns(UserWarning, match=r"train dataset: 1 single-atom configurations are marked "
                                         r"config_type=IsolatedAtom.*E0s='isolated'"):
        fitted = train(data, valid=fe[:1], **kw)
    assert fitted.training_summary["n_train"] == 5
    assert float(fitted.model.atomic_energies[0]) != -3.4
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=".*soc=True model.*")
        pot = train(data, valid=fe[:1], E0s="isolated", **kw)
    assert float(pot.model.atomic_energies[0]) == -3.4
    assert pot.training_summary["n_train"] == 5
    with pytest.raises(ConfigError, match="E0s='isolated' takes the reference energies.*has none"):
        train(list(fe), valid=fe[:1], E0s="isolated", **kw)
    feni = [a.copy() for a in fe]
    feni[0].numbers[0] = 28
    with pytest.raises(ConfigError, match=r"E0s gives no reference energy for \['Ni'\].*IsolatedAtom"):
        train(feni + [_isolated("Fe", -3.4, 4.0)], valid=fe[:1], E0s="isolated", **kw)
    with pytest.raises(ConfigError, match="two IsolatedAtom configurations of Fe have different energies"):
        train(data + [_isolated("Fe", -3.5, 4.0)], valid=fe[:1], E0s="isolated", **kw)
    with pytest.raises(ConfigError, match=r"E0s: expected one of 'average', 'isolated'"):
        train(data, valid=fe[:1], E0s="isolated_atoms", **kw)


def test_mace_configuration_weights_are_read_not_ignored(fe):
    """mace's data sets weight configurations with info['config_weight'] and leave a label out with
    info['config_forces_weight'] = 0 (the reference mMACE: config_magforces_weight): both were
    ignored (weight 1, label kept). Now read; weights spinlat cannot express are refused."""
    from spinlat.errors import InputError

    a = fe[0].copy()
    a.info["config_weight"] = 0.25
    a.info["config_magforces_weight"] = 0.0
    a.info["config_virials_weight"] = 1.0
    got = config_arrays(a)
    assert got["weight"] == 0.25 and "magnetic_forces" not in got and "forces" in got and "stress" in got
    a.info["weight"] = 0.5
    with pytest.raises(InputError, match=r"info\['weight'\] = 0.5 and mace's info\['config_weight'\] = 0.25 disagree"):
        config_arrays(a)
    b = fe[1].copy()
    b.info["config_forces_weight"] = 10.0
    with pytest.raises(InputError, match=r"configuration 3: info\['config_forces_weight'\] = 10.0: spinlat weights a "
                                         r"label per data set \(the training option forces_weight\)"):
        config_arrays(b, 3)


def test_an_energy_per_atom_under_its_own_name_is_named(fe):
    """CHGNet/MatGL-style data keep info['energy_per_atom']: with forces beside it the set trained
    without energies and without a word. The warning names it and the option that reads it."""
    from spinlat.training.data import check_dataset

    a = fe[0].copy()
    a.info["energy_per_atom"] = a.info.pop("energy") / len(a)
    with pytest.warns(UserWarning, match=r"info\['energy_per_atom'\] in 1 of the 2 configurations \(0\) looks like "
                                         r"energy per atom but is not read: spinlat reads energy per atom from "
                                         r"info\['energy'\] with energy_label='per_atom'"):
        assert check_dataset([a, fe[1]])[0] == ("forces", "magnetic_forces", "stress")
    b = fe[1].copy()
    b.info["energy_per_atom"] = b.info["energy"] / len(b)   # beside a total: nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_dataset([b])


def test_an_element_only_in_the_validation_set_is_refused(fe):
    """A Ni configuration only in the validation set: the model got a Ni species with E0 = 0 that no
    training configuration could fit, and validated against it without a word."""
    from spinlat.errors import ConfigError
    from spinlat.training import train

    ni = fe[0].copy()
    ni.numbers[:] = 28
    with pytest.raises(ConfigError, match=r"the validation set holds \['Ni'\], which no training configuration has"):
        train(list(fe[1:]), valid=[ni], epochs=0, progress=False, **TINY)


def test_magnetic_forces_in_mev_or_tesla_are_warned_about(fe):
    """Constraining fields in meV/μB (or a field in tesla) stored as magnetic_forces were trained on
    as eV/μB without a word (1000× too large); the teacher's ≤ 1.5 eV/μB pass quietly."""
    a = fe[0].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config_arrays(a)
    a.arrays["magnetic_forces"] = a.arrays["magnetic_forces"] * 1000.0
    with pytest.warns(UserWarning, match=r"configuration 0: magnetic_forces has a component of .* eV/μB: is it in "
                                         r"meV/μB, or a field in tesla"):
        config_arrays(a)


def test_a_data_set_of_several_files_is_read_in_order(fe, tmp_path):
    """One OUTCAR/extxyz per DFT run: `train: [a, b]` was refused (one path only); the files are now
    read in order and joined, in a train config and in Python."""
    import ase.io

    from spinlat.config import check_train_config
    from spinlat.errors import ConfigError
    from spinlat.training.data import load_dataset

    ase.io.write(tmp_path / "a.extxyz", fe[:1])
    ase.io.write(tmp_path / "b.extxyz", fe[1:3])
    cfg = check_train_config({"train": ["a.extxyz", "b.extxyz"], "output": "m.mmace"}, tmp_path)
    assert cfg["train"] == [str(tmp_path / "a.extxyz"), str(tmp_path / "b.extxyz")]
    got = load_dataset(cfg["train"])
    assert [a.get_potential_energy() for a in got] == [a.info["energy"] for a in fe[:3]]
    with pytest.raises(ConfigError, match=r"train: a list of data-set files must be a non-empty list of paths"):
        check_train_config({"train": [], "output": "m.mmace"}, tmp_path)


def test_e0s_of_elements_the_fine_tuned_model_knows_are_named_as_unused(fe):
    """Fine-tuning keeps the old species' E0: an E0 given for them (or an isolated atom's energy with
    E0s='isolated') was dropped without a word; now a warning names it and the E0 kept."""
    from spinlat.training import train

    kw = dict(epochs=0, progress=False, seed=0, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = train(list(fe), valid=fe[:1], **kw)
    kept = float(base.model.atomic_energies[0])
    with pytest.warns(UserWarning, match=rf"E0s given for elements the init_from model knows are not used: "
                                         rf"fine-tuning keeps their E0 \(Fe -3.4 eV \(kept: {kept:.6g} eV\)\)"):
        tuned = train(list(fe) + [_isolated("Fe", -3.4, 4.0)], valid=fe[:1], init_from=base, E0s="isolated",
                      epochs=0, progress=False, seed=0)
    assert float(tuned.model.atomic_energies[0]) == kept


def test_other_e0s_do_not_resume_the_old_run(fe, tmp_path):
    """The checkpoint did not record E0s: rerunning with E0s changed (same data) resumed the old run
    and kept its E0s without a word. Now the checkpoint names them as what differs."""
    from spinlat.errors import ConfigError
    from spinlat.training import train

    kw = dict(epochs=1, progress=False, seed=0, checkpoint_dir=str(tmp_path / "ck"), **TINY)
    data = list(fe) + [_isolated("Fe", -3.4, 4.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(data, valid=fe[:1], E0s="isolated", **kw)
        with pytest.raises(ConfigError, match=r"belongs to another run \(the reference energies E0s differ\)"):
            train(data, valid=fe[:1], E0s={"Fe": -3.5}, **kw)
