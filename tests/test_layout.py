"""The package's layout: stores written by jaxmom 0.4 (before the move to subpackages) resume
with today's code, to the same bits."""

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxmom

DATA = Path(__file__).parent / "data"
STORES = DATA / "stores_v0_4"


def _made_with_this_jax(store: Path) -> None:
    # The computation's fingerprint hashes the jaxpr's text, which JAX's printer may change
    # between releases; the fixtures were written with one JAX.
    made = json.loads((store / "zarr.json").read_text())["attributes"]["metadata"]["jax_version"]
    if made != jax.__version__:
        pytest.skip(f"the 0.4 stores were written with jax {made}, this is {jax.__version__}")


def _resume(tmp_path: Path, name: str, blocks, run):
    """Copies a 0.4 store, marks ``blocks`` not done (their status chunk removed, as a kill
    before their write leaves them), resumes it with ``run(out)`` and returns (before, after)."""
    _made_with_this_jax(STORES / name)
    out = tmp_path / name
    shutil.copytree(STORES / name, out)
    before = jaxmom.SweepResult.load(out)
    before = {k: np.asarray(v) for k, v in before.outputs.items()}
    for q, g in blocks:
        (out / "status" / "c" / str(q) / str(g)).unlink()
    after = run(out)
    for q, g in blocks:
        assert (out / "status" / "c" / str(q) / str(g)).is_file()
    return before, {k: np.asarray(v) for k, v in after.outputs.items()}


def test_a_chapter_store_of_0_4_resumes(tmp_path):
    import make_v04_stores as made

    before, after = _resume(
        tmp_path, "chapter.zarr", [(1, 0)],
        lambda out: jaxmom.sweep(**made.CHAPTER, out=out, progress=False, chunk_size=2),
    )  # fmt: skip
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_an_nnx_trial_store_of_0_4_resumes(tmp_path):
    import make_v04_stores as made

    task, data = made.nnx_setup()
    before, after = _resume(
        tmp_path, "nnx.zarr", [(1, 1), (0, 0)],
        lambda out: jaxmom.trial_sweep(task.train_fn(6), made.NNX_TRIALS, (0, 1), data=data,
                                       chunk_size=2, out=out, progress=False),
    )  # fmt: skip
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
