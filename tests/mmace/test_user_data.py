"""mMACE with data and files as users have them: stresses given as virials or in the wrong unit,
labels stored under other codes' names (mace's REF_*), damaged or foreign model files. Fast: no
training, tiny models."""

import warnings

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mace")

from ase.build import bulk  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402

from spinlat.potentials.mmace.graph import config_arrays  # noqa: E402
from spinlat.training.data import check_dataset  # noqa: E402


def _fe(seed=0):
    at = bulk("Fe", "bcc", a=2.87, cubic=True)
    at.set_cell(at.cell.array + np.array([[0, 0.1, 0], [0.05, 0, 0], [0.2, -0.1, 0.02]]), scale_atoms=True)
    at.rattle(0.02, seed=seed)
    at.arrays["magmoms"] = np.array([[0, 0, 2.2], [0.3, 0, 2.1]])
    at.info["energy"] = -16.0
    return at


def test_virial_is_read_as_minus_virial_over_volume(tmp_path):
    """GPUMD / mace data sets give W = −∂E/∂ε (eV) under info['virial']: σ = −W/V (eV/Å³, ASE
    sign), also after an extxyz round trip through ase.io."""
    import ase.io

    at = _fe()
    w = np.array([[0.3, 0.01, 0.02], [0.01, -0.2, 0.05], [0.02, 0.05, 0.1]])
    at.info["virial"] = w
    ase.io.write(tmp_path / "d.extxyz", [at])
    back = ase.io.read(tmp_path / "d.extxyz")
    for a in (at, back):
        got = config_arrays(a)["stress"]
        np.testing.assert_allclose(got, -w / at.get_volume(), rtol=1e-12)
    assert check_dataset([back]) == [("energy", "stress")]


def test_stress_wins_over_virial():
    at = _fe()
    at.info["stress"] = np.full(6, 0.01)
    at.info["virial"] = np.eye(3)
    np.testing.assert_allclose(np.diag(config_arrays(at)["stress"]), 0.01)


def test_stress_in_kbar_is_warned_about():
    """VASP's OUTCAR stress in kbar (here −15 kB) stored as eV/Å³: a warning, not a silent label."""
    at = _fe()
    at.info["stress"] = np.array([-15.0, -15.0, -15.0, 0.0, 0.0, 0.0])
    with pytest.warns(UserWarning, match="kbar"):
        config_arrays(at)
    at.info["stress"] = np.array([-0.01, -0.01, -0.01, 0.0, 0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config_arrays(at)


def test_labels_under_other_names_are_named_not_dropped_silently():
    """A file mixing spinlat's names with mace's / the reference magnetic MACE's: the magnetic
    forces under REF_magforces and an energy under REF_energy would be lost without a word."""
    a = _fe(0)
    b = _fe(1)
    b.arrays["REF_magforces"] = np.ones((2, 3))
    c = _fe(2)
    del c.info["energy"]
    c.arrays["forces"] = np.zeros((2, 3))
    c.info["REF_energy"] = -15.9
    with pytest.warns(UserWarning) as rec:
        labels = check_dataset([a, b, c])
    text = " ".join(str(r.message) for r in rec)
    assert "arrays['REF_magforces'] in 1 of the 3 configurations (1) looks like magnetic_forces" in text
    assert "info['REF_energy'] in 1 of the 3 configurations (2) looks like energy" in text
    assert labels == [("energy",), ("energy",), ("forces",)]


def test_spinlat_own_names_give_no_warning():
    at = _fe()
    del at.arrays["magmoms"]
    at.calc = SinglePointCalculator(at, energy=-16.0, forces=np.zeros((2, 3)), stress=np.zeros(6),
                                    magmoms=np.array([2.2, 2.1]), free_energy=-16.1)
    del at.info["energy"]
    at.arrays["magnetic_forces"] = np.zeros((2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_dataset([at]) == [("energy", "forces", "magnetic_forces", "stress")]


TINY = dict(r_max=3.0, max_ell=1, hidden_irreps="2x0e+2x1o", radial_MLP=[4], num_bessel=2, correlation=1,
            MLP_irreps="2x0e", num_moment_basis=2, num_exchange_basis=1)


def _flip_byte_in_data(path, back=40):
    """Flip one byte ``back`` bytes before the end of a safetensors file: inside the last tensor's
    data, which the format's own header checks cannot see."""
    b = bytearray(path.read_bytes())
    b[-back] ^= 0x10
    path.write_bytes(bytes(b))


def test_model_file_with_a_damaged_weight_is_refused(tmp_path):
    """A flipped bit inside a weight used to load without a word and give other energies."""
    from spinlat.errors import FileFormatError
    from spinlat.potentials import MagneticMACE

    pot = MagneticMACE.create(["Fe"], seed=0, **TINY)
    path = tmp_path / "m.mmace"
    pot.save(path)
    MagneticMACE.load(path)  # intact: loads
    _flip_byte_in_data(path)
    with pytest.raises(FileFormatError, match="damaged"):
        MagneticMACE.load(path)


def test_damaged_training_checkpoint_is_refused(tmp_path):
    import torch

    from spinlat.errors import FileFormatError
    from spinlat.training.checkpoint import load_checkpoint, save_checkpoint

    model = torch.nn.Linear(3, 2, dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters())

    class _Ema:
        def state_dict(self):
            return {"shadow": [p.detach().clone() for p in model.parameters()]}

    save_checkpoint(tmp_path, model=model, optimizer=opt, scheduler=None, ema=_Ema(), epoch=1, history=[], best=None,
                    best_state=None, meta={})
    assert load_checkpoint(tmp_path)["epoch"] == 1
    _flip_byte_in_data(tmp_path / "checkpoint.safetensors", back=4)
    with pytest.raises(FileFormatError, match="damaged.*resume=False"):
        load_checkpoint(tmp_path)


def test_torch_pickle_given_as_a_model_is_named(tmp_path):
    """A mace-torch .model (torch.save) handed to MagneticMACE.load: say what it is and what to do."""
    import torch

    from spinlat.errors import FileFormatError
    from spinlat.potentials import MagneticMACE

    path = tmp_path / "ref.model"
    torch.save({"a": torch.zeros(2)}, path)
    with pytest.raises(FileFormatError, match="torch pickle.*ReferenceMagneticMACE.convert"):
        MagneticMACE.load(path)


def test_damaged_graph_cache_is_rebuilt_not_trained_on(tmp_path):
    """A damaged cached graph would train on altered labels: it is rebuilt, with a warning."""
    import torch

    from spinlat.training.data import graphs_of

    data = [_fe(0), _fe(1)]
    first = graphs_of(data, 3.0, [26], cache_dir=tmp_path)
    (cache,) = tmp_path.glob("graphs-*.safetensors")
    _flip_byte_in_data(cache, back=12)
    with pytest.warns(UserWarning, match="damaged"):
        again = graphs_of(data, 3.0, [26], cache_dir=tmp_path)
    for g, h in zip(first, again):
        for k in g:
            assert torch.equal(g[k], h[k]), k
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graphs_of(data, 3.0, [26], cache_dir=tmp_path)  # the rebuilt cache is sound


def test_corrected_labels_do_not_resume_the_old_run(tmp_path):
    """Retraining with the same checkpoint_dir after correcting the energies used to resume the
    old run — with its epochs done, silently returning the model of the old labels."""
    from spinlat.errors import ConfigError
    from spinlat.training import train

    data = [_fe(k) for k in range(3)]
    kw = dict(epochs=1, seed=0, progress=False, checkpoint_dir=tmp_path / "ck", **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(data, **kw)
        again = train(data, **kw)  # the same data: resumed, nothing left to do
    assert len(again.training_history) == 1
    for at in data:
        at.info["energy"] += 0.5
    with pytest.raises(ConfigError, match="training or validation data"):
        train(data, **kw)


def test_evaluate_names_the_bad_configuration_by_its_index_in_the_data_set():
    """The 11th configuration (index 10) with an element the model never saw: the error used to
    say "configuration 2" (its place in the batch of 8)."""
    from spinlat.errors import UnknownElementError
    from spinlat.potentials import MagneticMACE

    pot = MagneticMACE.create(["Fe"], seed=0, **TINY)
    data = [_fe(k) for k in range(12)]
    data[10].numbers[0] = 28
    with pytest.raises(UnknownElementError, match=r"configuration 10: .*Ni"):
        pot.evaluate(data)


def test_evaluate_names_labels_it_does_not_read():
    """A held-out set with the magnetic forces under REF_magforces: evaluate's magnetic-force RMSE
    would be NaN (or leave configurations out) without a word."""
    from spinlat.potentials import MagneticMACE

    pot = MagneticMACE.create(["Fe"], seed=0, **TINY)
    data = [_fe(0), _fe(1)]
    data[1].arrays["REF_magforces"] = np.zeros((2, 3))
    with pytest.warns(UserWarning, match=r"MagneticMACE.evaluate: dataset: arrays\['REF_magforces'\] in 1 of the 2"):
        pot.evaluate(data)


def test_soc_model_on_collinear_data_is_warned_about():
    """Collinear VASP moments (N,) all along +z and the default soc=True: the model cannot learn
    that turning all spins together costs nothing (no spin-orbit coupling in the data)."""
    from spinlat.training.data import graphs_of, warn_if_collinear_data

    data = [_fe(0), _fe(1)]
    for at in data:
        at.arrays["magmoms"] = np.array([2.2, -2.1])  # collinear, antiparallel
    graphs = graphs_of(data, 3.0, [26])
    with pytest.warns(UserWarning, match="soc=False"):
        warn_if_collinear_data(graphs, soc=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_collinear_data(graphs, soc=False)
        warn_if_collinear_data(graphs_of([_fe(0)], 3.0, [26]), soc=True)  # non-collinear moments


def _files_with_bad_fourth(tmp_path, bad):
    """Two extxyz files of three configurations each; configuration 1 of the second made bad by
    ``bad(atoms)``."""
    import ase.io

    first = [_fe(k) for k in range(3)]
    second = [_fe(10 + k) for k in range(3)]
    bad(second[1])
    a, b = tmp_path / "a.extxyz", tmp_path / "b.extxyz"
    ase.io.write(a, first)
    ase.io.write(b, second)
    return a, b


def test_errors_name_the_file_and_its_own_configuration_index(tmp_path):
    """A data set given as several files: an error names the file and the configuration's index in
    it ("configuration 1 of b.extxyz"), not its place counted across the files (4)."""
    from spinlat.errors import InputError
    from spinlat.training.data import load_dataset

    def no_moments(at):  # non-finite moments: refused when read
        at.arrays["magmoms"] = np.full((len(at), 3), np.nan)

    a, b = _files_with_bad_fourth(tmp_path, no_moments)
    data = load_dataset([a, b], "train")
    with pytest.raises(InputError, match=rf"configuration 1 of {b}") as err:
        check_dataset(data, "train")
    assert "configuration 4" not in str(err.value)
    data = load_dataset(str(b), "train")  # one file: named too
    with pytest.raises(InputError, match=rf"configuration 1 of {b}"):
        check_dataset(data, "train")


def test_errors_after_the_validation_split_name_the_file(tmp_path):
    """After the random validation split (indices renumbered) and a per-atom energy rescaling, an
    element the model does not know is still named by its file and index there."""
    from spinlat.errors import UnknownElementError
    from spinlat.training.data import graphs_of, load_dataset
    from spinlat.training.loop import prepare_data
    from spinlat.training.options import TrainingOptions

    def nickel(at):
        at.numbers[0] = 28

    a, b = _files_with_bad_fourth(tmp_path, nickel)
    opts = TrainingOptions(seed=0, valid_fraction=0.5, energy_label="per_atom", check_energies=False)
    data = prepare_data([str(a), str(b)], None, opts)
    both = [(d, k) for d in (data.train, data.valid) for k in range(len(d)) if 28 in d[k].numbers]
    assert len(both) == 1
    part, k = both[0]
    with pytest.raises(UnknownElementError, match=rf"configuration 1 of {b}"):
        graphs_of(part.subset([k]), 3.0, [26])
    assert len(load_dataset([a, b])) == 6


def test_evaluate_on_several_files_names_the_file(tmp_path):
    """MagneticMACE.evaluate (``spinlat train``'s test set, read by load_dataset from a list of
    files) names a configuration with an element the model lacks by its file and index there."""
    from spinlat.errors import UnknownElementError
    from spinlat.potentials import MagneticMACE
    from spinlat.training.data import load_dataset

    def nickel(at):
        at.numbers[0] = 28

    a, b = _files_with_bad_fourth(tmp_path, nickel)
    model = MagneticMACE.create(["Fe"], r_max=3.0, num_interactions=1, hidden_irreps="4x0e", MLP_irreps="4x0e",
                                max_ell=1, correlation=1, num_bessel=2, radial_MLP=[4])
    with pytest.raises(UnknownElementError, match=rf"configuration 1 of {b}"):
        model.evaluate(load_dataset([a, b], "test"), batch_size=2)
    with pytest.raises(UnknownElementError, match=rf"configuration 1 of {b}"):
        model.evaluate(str(b))
