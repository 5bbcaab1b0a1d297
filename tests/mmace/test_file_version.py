"""Model files of the version-1 architecture (before exact inversion with soc=True) are refused clearly."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

from spinlat.errors import FileFormatError  # noqa: E402
from spinlat.potentials import MagneticMACE  # noqa: E402
from spinlat.potentials.mmace import potential  # noqa: E402

from _tiny import TINY, _one_thread  # noqa: E402,F401


def test_version_1_files_are_refused_with_the_reason(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    assert potential.VERSION == 2
    good = tmp_path / "good.mmace"
    MagneticMACE.create(["Fe"], soc=True, seed=0, **TINY).save(good)
    with safe_open(str(good), framework="pt") as f:
        meta = f.metadata()
    assert meta["version"] == "2"
    old = tmp_path / "old.mmace"
    save_file(load_file(str(good)), str(old), metadata=dict(meta, version="1"))
    with pytest.raises(FileFormatError, match="version 1.*retrain"):
        MagneticMACE.load(old)
