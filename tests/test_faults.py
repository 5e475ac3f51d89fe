"""Faults end in one line that says what happened and how to resume, keep every finished block,
and are never reported as damage when they are not."""

import errno

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmom
from jaxmom.cli import main as cli_main
from tests.test_store import _forget_half

GRID = {"beta": [0.1, 0.2, 0.3, 0.4]}


def _train_fn(hp, key):
    return {"loss": jnp.sum(jax.random.normal(key, (3,)) * hp["beta"])}


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_resume_is_not_damage(tmp_path, monkeypatch):
    """A resume while the disk is full says so and that the same call resumes; once there is
    room, it does, to the same bits (it was never damage: deleting it would lose every block)."""
    import zarr

    out = tmp_path / "s.zarr"
    kw = dict(seeds=[0, 1], chunk_size=2, out=out, progress=False)
    whole = np.asarray(jaxmom.grid_sweep(_train_fn, GRID, **kw)["loss"])
    _forget_half(out)
    with monkeypatch.context() as m:
        m.setattr(zarr, "consolidate_metadata", _disk_full)
        with pytest.raises(OSError, match="nothing in it is damaged") as e:
            jaxmom.grid_sweep(_train_fn, GRID, **kw)
        assert "No space left" in str(e.value) and "the same call resumes" in str(e.value)
        assert "delete" not in str(e.value)
    np.testing.assert_array_equal(jaxmom.grid_sweep(_train_fn, GRID, **kw)["loss"], whole)


def test_a_full_disk_at_the_commands_resume_is_one_line(tmp_path, monkeypatch, capsys):
    import zarr

    out = tmp_path / "c.zarr"
    argv = ["sweep", "--betas", "0.5,0.9", "--epochs", "1", "--no-progress", "--out", str(out)]
    assert cli_main(argv) == 0
    _forget_half(out)
    capsys.readouterr()
    monkeypatch.setattr(zarr, "consolidate_metadata", _disk_full)
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left" in err and "resumes" in err, err
    assert "damaged metadata" not in err and "delete" not in err
