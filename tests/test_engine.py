"""The sweep engine on a model that is not the chapter's: equal to direct calls run by run."""

import fcntl
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxmom
from jaxmom.common import umask
from jaxmom.results import Lock

GRID = {"beta": [0.0, 0.5, 0.9], "learning_rate": [0.1, 1.0], "steps": [3, 10]}
SEEDS = [0, 7]


def logistic(hp, key, data):
    """Logistic regression trained with momentum; an integer axis (steps) masks the updates."""
    x, y = data
    w = 0.1 * jax.random.normal(key, (x.shape[1],))
    opt = jaxmom.sgd_momentum(hp["learning_rate"], hp["beta"])

    def loss(w):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(x @ w, y))

    def step(carry, t):
        w, s = carry
        value, g = jax.value_and_grad(loss)(w)
        u, s2 = opt.update(g, s, w)
        keep = t < hp["steps"]
        return (
            jnp.where(keep, w + u, w),
            jax.tree.map(lambda a, b: jnp.where(keep, a, b), s2, s),
        ), value

    (w, _), losses = jax.lax.scan(step, (w, opt.init(w)), jnp.arange(12))
    return {"loss": losses, "final": {"w": w, "loss": loss(w)}}


def _data(seed, n=64, d=5):
    kx, kw = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, (n, d))
    return x, (x @ jax.random.normal(kw, (d,)) > 0).astype(jnp.float32)


@pytest.fixture(scope="module")
def data():
    return _data(0)


@pytest.fixture(scope="module")
def swept(data):
    return jaxmom.grid_sweep(logistic, GRID, SEEDS, data=data, chunk_size=5, progress=False)


def test_each_run_equals_a_direct_call_with_nested_outputs(swept, data):
    assert set(swept.outputs) == {"loss", "final/w", "final/loss"}
    assert swept["loss"].shape == (3, 2, 2, 2, 12)
    assert swept["final/w"].shape == (3, 2, 2, 2, 5)
    assert swept.tree()["final"]["w"].shape == (3, 2, 2, 2, 5)
    direct = jax.jit(logistic)
    for idx in np.ndindex(3, 2, 2, 2):
        hp = {k: jnp.asarray(v[i]) for (k, v), i in zip(GRID.items(), idx[:3], strict=True)}
        ref = direct(hp, jax.random.key(SEEDS[idx[3]]), data)
        np.testing.assert_allclose(swept["loss"][idx], ref["loss"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(swept["final/w"][idx], ref["final"]["w"], rtol=1e-5, atol=1e-7)
    # the integer axis is traced: 3 steps leave the weights where 10 move them on
    assert not np.allclose(swept["final/w"][:, :, 0], swept["final/w"][:, :, 1])


def test_a_hand_written_vmap_gives_the_same_bits(swept, data):
    """The engine's blocks against ``jit(vmap(vmap(train_fn)))`` over the same grid."""
    b, lr, st = np.meshgrid(*[np.asarray(v) for v in GRID.values()], indexing="ij")
    hp = {
        "beta": jnp.float32(b.ravel()),
        "learning_rate": jnp.float32(lr.ravel()),
        "steps": jnp.int32(st.ravel()),
    }
    keys = jax.vmap(jax.random.key)(jnp.asarray(SEEDS))
    fn = jax.jit(jax.vmap(lambda h: jax.vmap(lambda k: logistic(h, k, data))(keys)))
    ref = np.asarray(fn(hp)["loss"]).reshape(3, 2, 2, 2, 12)
    np.testing.assert_allclose(swept["loss"], ref, rtol=1e-6, atol=1e-7)


def test_new_data_of_the_same_shapes_does_not_recompile(swept):
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compiles.append(name) if "backend_compile" in name else None
    )
    other = jaxmom.grid_sweep(logistic, GRID, SEEDS, data=_data(1), chunk_size=5, progress=False)
    assert compiles == []
    assert not np.allclose(other["loss"], swept["loss"])


def test_many_seeds_are_cut_into_bounded_blocks(data, tmp_path):
    """One grid point, 40 seeds, 8 runs a call: blocks of 1 point x 8 seeds."""
    seeds = list(range(40))
    grid = {"beta": [0.9], "learning_rate": [0.5], "steps": [10]}
    res = jaxmom.grid_sweep(
        logistic, grid, seeds, data=data, chunk_size=8, out=tmp_path / "s", progress=False
    )
    import zarr

    assert zarr.open_group(tmp_path / "s", mode="r").attrs["block"] == [1, 8]
    whole = jaxmom.grid_sweep(logistic, grid, seeds, data=data, progress=False)
    # another batch size may be vectorised otherwise by XLA (1 ulp apart at jax 0.8)
    np.testing.assert_allclose(res["loss"], whole["loss"], rtol=1e-6, atol=0)


def test_seeds_alone_and_divergence_from_chosen_outputs():
    def fn(hp, key):
        v = jax.random.normal(key, (2,))
        return {"v": v, "bad": jnp.where(v[0] > 0, jnp.inf, 0.0)}

    res = jaxmom.grid_sweep(fn, {}, seeds=[0, 1, 2, 3], progress=False)
    assert res["v"].shape == (4, 2)
    np.testing.assert_array_equal(res["v"][2], jax.random.normal(jax.random.key(2), (2,)))
    np.testing.assert_array_equal(res.diverged, res["v"][:, 0] > 0)
    only_v = jaxmom.grid_sweep(fn, {}, seeds=[0, 1, 2, 3], progress=False, check_finite=["v"])
    assert not only_v.diverged.any()


def test_values_are_stored_as_given_and_best_reports_them(data):
    res = jaxmom.grid_sweep(
        lambda hp, k, d: {"final_loss": logistic(hp, k, d)["final"]["loss"]},
        {"beta": [0.9, 0.3], "learning_rate": [0.7], "steps": [12]},
        data=data,
        progress=False,
    )
    assert res.axes["beta"].tolist() == [0.9, 0.3]
    assert res.best(1)[0]["beta"] in (0.9, 0.3)  # 0.9, not 0.8999999761581421
    assert "0.9" in res.summary()


def test_the_store_reads_lazily_slice_by_slice(swept, data, tmp_path):
    out = tmp_path / "s.zarr"
    stored = jaxmom.grid_sweep(
        logistic, GRID, SEEDS, data=data, chunk_size=5, out=out, progress=False
    )
    lazy = stored.outputs["loss"]
    assert lazy.shape == (3, 2, 2, 2, 12)
    np.testing.assert_array_equal(lazy[1, :, 0], swept["loss"][1, :, 0])
    np.testing.assert_array_equal(lazy[[2, 0], 1, ..., 3], swept["loss"][[2, 0], 1, ..., 3])
    np.testing.assert_array_equal(np.asarray(lazy), swept["loss"])
    assert (out / "zarr.json").stat().st_mode & 0o777 == 0o666 & ~umask()


def test_a_store_in_use_is_refused_and_a_killed_owner_frees_it(data, tmp_path):
    out = tmp_path / "s.zarr"
    out.mkdir()
    lock = Lock(out)
    with pytest.raises(RuntimeError, match=r"in use by another sweep \(pid \d+"):
        jaxmom.grid_sweep(logistic, GRID, SEEDS, data=data, out=out, progress=False)
    lock.release()
    holder = subprocess.Popen(  # another process takes the lock, then is killed
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR);"
            " fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)",
            str(out / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    fd = os.open(out / ".lock", os.O_RDWR)
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder.kill()
    holder.wait()
    res = jaxmom.grid_sweep(logistic, GRID, SEEDS, data=data, out=out, progress=False)
    os.close(fd)
    assert res.complete


@pytest.mark.parametrize(
    "grid, seeds, kwargs, error, match",
    [
        ({"beta": []}, [0], {}, ValueError, r"grid\['beta'\] must be a non-empty 1-D"),
        ({"beta": [[0.1, 0.2]]}, [0], {}, ValueError, r"grid\['beta'\] must be a non-empty 1-D"),
        ({"nesterov": [True, False]}, [0], {}, ValueError, r"grid\['nesterov'\] holds bools"),
        ({"opt": ["sgd"]}, [0], {}, ValueError, r"grid\['opt'\] must hold numbers"),
        ({"lr": [1e39]}, [0], {}, ValueError, r"grid\['lr'\] value 1e\+39 does not fit float32"),
        ({"lr": [0.1]}, [0.5], {}, ValueError, "seeds must be a non-empty 1-D sequence of int"),
        ({"lr": [0.1]}, [0, 2**32], {}, ValueError, r"seeds must lie in \[0, 2\*\*32\)"),
        ({"lr": [0.1]}, [1, 1], {}, ValueError, "seeds must be distinct"),
        ({"lr": [0.1]}, [0], {"check_finite": ["nope"]}, ValueError, "check_finite names 'nope'"),
        ({"lr": [0.1]}, [0], {"chunk_size": 0}, ValueError, "chunk_size=0"),
        ({"lr": [0.1]}, [0], {"out": "/no/such/dir/s.zarr"}, ValueError, "does not exist"),
        ("lr", [0], {}, TypeError, "grid must be a dict"),
    ],
)
def test_bad_input_is_refused_before_any_compute(grid, seeds, kwargs, error, match):
    ran = []

    def fn(hp, key):  # traced for its output shapes, never run
        jax.debug.callback(lambda: ran.append(1))
        return {"x": jnp.zeros(())}

    with pytest.raises(error, match=match):
        jaxmom.grid_sweep(fn, grid, seeds, progress=False, **kwargs)
    assert not ran


def test_bad_outputs_and_paths_name_what_is_wrong(tmp_path):
    with pytest.raises(TypeError, match=r"train_fn\(hparams, key\) failed: .* not a valid JAX"):
        jaxmom.grid_sweep(lambda hp, key: {"x": "text"}, {"lr": [0.1]}, progress=False)
    with pytest.raises(TypeError, match="train_fn must return a pytree of arrays"):
        jaxmom.grid_sweep(lambda hp, key: {}, {"lr": [0.1]}, progress=False)
    with pytest.raises(TypeError, match=r"train_fn\(hparams, key, data\) failed"):
        jaxmom.grid_sweep(lambda hp, key: {}, {"lr": [0.1]}, data=jnp.ones(2), progress=False)
    afile = tmp_path / "file"
    afile.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    fn = lambda hp, key: {"x": hp["lr"]}  # noqa: E731
    for path, match in ((afile, "is a file"), (foreign, "is not a jaxmom sweep store")):
        with pytest.raises(ValueError, match=match):
            jaxmom.grid_sweep(fn, {"lr": [0.1]}, out=path, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"  # nothing of the user's touched


def test_a_grid_too_large_for_memory_is_refused_with_its_size():
    fn = lambda hp, key: {"curve": jnp.zeros(4096) + hp["a"]}  # noqa: E731
    grid = {"a": np.arange(100_000.0), "b": np.arange(1000.0)}
    assert issubclass(jaxmom.SweepTooLarge, ValueError)
    with pytest.raises(
        jaxmom.SweepTooLarge, match=r"100,000,000 runs take 1\.49 TiB|runs take .* GiB"
    ):
        jaxmom.grid_sweep(fn, grid, progress=False)


def test_csv_of_100_000_runs_is_linear(tmp_path):
    """The CSV of 100,000 runs (the old export was quadratic: 30 s for 16,384 rows)."""
    n = 100_000
    res = jaxmom.SweepResult(
        {"beta": np.linspace(0, 0.99, n // 4), "lr": [0.01, 0.1]},
        [0, 1],
        {"final_loss": np.arange(n, dtype=np.float32).reshape(n // 2, 2)},
        np.zeros((n // 2, 2), bool),
        np.ones((n // 2, 2), bool),
        {},
    )
    rows = res.to_csv(tmp_path / "big.csv").read_text().splitlines()
    assert len(rows) == n + 1 and rows[0] == "beta,lr,seed,final_loss,diverged"
    assert rows[2] == "0.0,0.01,1,1.0,False" and rows[-1] == "0.99,0.1,1,99999.0,False"
