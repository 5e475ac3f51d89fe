"""Sweep results in the tools people already use: best/summary in either direction, pandas, CSV
with odd names, xarray (in memory, lazily over a store, ``xr.open_zarr`` on the store itself),
stores of jaxmom 0.2, and plots that say what they show."""

import csv
import importlib.util
import json
import shutil
import warnings

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import pytest

import jaxmom
from jaxmom.results import _result as result_mod

matplotlib.use("Agg")
xr = pytest.importorskip("xarray")
pd = pytest.importorskip("pandas")

GRID = {"beta": [0.0, 0.5, 0.9], "lr, warm": [0.1, 1.0]}  # an axis name CSV must quote
SEEDS = [0, 5]


def run(hp, key, data):
    """Logistic regression: losses per step, a final loss, an accuracy, a nested output."""
    x, y = data
    w = 0.1 * jax.random.normal(key, (x.shape[1],))
    opt = jaxmom.sgd_momentum(hp["lr, warm"], hp["beta"])

    def loss(w):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(x @ w, y))

    def step(carry, _):
        w, s = carry
        value, g = jax.value_and_grad(loss)(w)
        u, s = opt.update(g, s, w)
        return (w + u, s), value

    (w, _), losses = jax.lax.scan(step, (w, opt.init(w)), length=6)
    accuracy = jnp.mean((x @ w > 0) == (y > 0.5))
    return {"losses": losses, "final_loss": loss(w), "accuracy": accuracy, "nested": {"w": w}}


@pytest.fixture(scope="module")
def data():
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (48, 4))
    return x, (x @ jax.random.normal(kw, (4,)) > 0).astype(jnp.float32)


@pytest.fixture(scope="module")
def stored(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("results") / "s.zarr"
    res = jaxmom.grid_sweep(run, GRID, SEEDS, data=data, chunk_size=2, out=path, progress=False)
    return res, path


def test_best_and_summary_rank_in_either_direction():
    acc = np.array([[0.2, 0.3], [0.9, 0.95], [0.5, 0.6]], np.float32)  # 3 points x 2 seeds
    res = jaxmom.SweepResult(
        {"beta": [0.0, 0.5, 0.9]},
        [0, 1],
        {"test_accuracy": acc, "final_loss": 1 - acc},
        np.zeros((3, 2), bool),
        np.ones((3, 2), bool),
        {},
    )
    top = res.best(2, metric="test_accuracy")  # an accuracy: the highest first by default
    assert [r["beta"] for r in top] == [0.5, 0.9]
    assert top[0]["test_accuracy"] == pytest.approx(0.925)
    assert [r["beta"] for r in res.best(2, "test_accuracy", mode="min")] == [0.0, 0.9]
    assert [r["beta"] for r in res.best(1, "final_loss")] == [0.5]  # a loss: the lowest
    assert [r["beta"] for r in res.best(1, "final_loss", mode="max")] == [0.0]
    lines = res.summary("test_accuracy").splitlines()
    assert lines[2].split()[0] == "0.5" and lines[-1].split()[0] == "0"
    with pytest.raises(ValueError, match=r"mode must be 'min' or 'max', got mode='up'"):
        res.best(metric="test_accuracy", mode="up")


def test_dataframe_and_csv_round_trip_with_odd_names(stored, tmp_path):
    res, _ = stored
    df = res.to_dataframe()
    assert list(df.columns) == ["beta", "lr, warm", "seed", "accuracy", "final_loss", "diverged"]
    assert len(df) == 12
    row = df[(df["beta"] == 0.9) & (df["lr, warm"] == 1.0) & (df["seed"] == 5)].iloc[0]
    assert row["final_loss"] == res["final_loss"][2, 1, 1]
    path = res.to_csv(tmp_path / "s.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(df.columns) and all(len(r) == 6 for r in rows)
    back = pd.read_csv(path)
    assert list(back.columns) == list(df.columns)
    np.testing.assert_allclose(back["final_loss"], df["final_loss"], rtol=1e-6)
    np.testing.assert_array_equal(back["lr, warm"], df["lr, warm"])


def test_to_xarray_in_memory_and_lazily_from_the_store(stored, monkeypatch):
    res, path = stored
    ds = res.to_xarray()
    assert ds["final_loss"].dims == ("beta", "lr, warm", "seed")
    assert ds["losses"].dims == ("beta", "lr, warm", "seed", "losses_0")
    assert ds["nested/w"].shape == (3, 2, 2, 4)
    assert ds["beta"].values.tolist() == [0.0, 0.5, 0.9]  # as given, not 0.8999999761581421
    beta_09 = res["final_loss"][2]
    want = beta_09.mean(-1)
    np.testing.assert_allclose(ds.sel(beta=0.9).mean("seed")["final_loss"], want, rtol=1e-6)
    assert not ds["diverged"].any() and ds["done"].all()
    assert json.loads(ds.attrs["metadata"])["settings"] == res.metadata["settings"]

    reads = []
    grid_getitem = result_mod.GridArray.__getitem__
    monkeypatch.setattr(
        result_mod.GridArray,
        "__getitem__",
        lambda self, key: reads.append(key) or grid_getitem(self, key),
    )
    lazy = jaxmom.SweepResult.load(path).to_xarray()
    assert reads == []  # opening reads no output
    got = lazy.sel(beta=0.9).mean("seed")["final_loss"].values
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert len(reads) == 4 and all(key[0] == 2 for key in reads)  # beta's third value only
    reads.clear()
    np.testing.assert_array_equal(lazy["final_loss"].sel(beta=0.9).values, beta_09)
    assert len(reads) == 1  # one output read, not the others
    if importlib.util.find_spec("dask") is None:
        with pytest.raises(ImportError, match=r"dask.*jaxmom\[xarray\]"):
            res.to_xarray(chunks="auto")
    else:
        chunked = jaxmom.SweepResult.load(path).to_xarray(chunks={"beta": 1})
        np.testing.assert_allclose(
            chunked.mean("seed")["final_loss"], ds.mean("seed")["final_loss"]
        )


def test_xr_open_zarr_on_the_store_gives_coordinates_without_warnings(stored):
    res, path = stored
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(path)
        grid = ds.set_index(point=list(GRID)).unstack("point")
    assert {"final_loss", "losses", "nested.w", "status"} <= set(ds.data_vars)
    assert set(ds["final_loss"].coords) == {"beta", "seed"}  # "lr, warm" has a space: a variable
    assert ds["lr, warm"].dims == ("point",)
    np.testing.assert_array_equal(
        grid["final_loss"].transpose("beta", "lr, warm", "seed"), res["final_loss"]
    )
    assert grid["beta"].values.tolist() == [0.0, 0.5, 0.9]


def test_stores_of_jaxmom_0_2_load_and_resume(stored, data, tmp_path):
    """A store in 0.2's layout (outputs under out/, no axis arrays), half done, loads and
    resumes to the bits of the uninterrupted sweep."""
    res, path = stored
    old = tmp_path / "old.zarr"
    shutil.copytree(path, old)
    (old / "out").mkdir()
    meta = json.loads((old / "zarr.json").read_text())
    for name in meta["attributes"]["outputs"]:
        (old / name.replace("/", ".")).rename(old / "out" / name.replace("/", "."))
    if (old / "out" / "nested.w").exists():
        (old / "out" / "nested").mkdir()
        (old / "out" / "nested.w").rename(old / "out" / "nested" / "w")
        (old / "out" / "nested" / "zarr.json").write_text(
            '{"zarr_format": 3, "node_type": "group"}'
        )
    for name in [*GRID, "seed"]:
        shutil.rmtree(old / name)
    meta["attributes"]["format"] = "jaxmom.sweep/2"
    meta.pop("consolidated_metadata", None)
    (old / "zarr.json").write_text(json.dumps(meta))
    (old / "out" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    loaded = jaxmom.SweepResult.load(old)
    np.testing.assert_array_equal(loaded["final_loss"], res["final_loss"])
    np.testing.assert_array_equal(loaded["nested/w"], res["nested/w"])
    shutil.rmtree(old / "status" / "c" / "1")  # half the blocks not done
    assert not jaxmom.SweepResult.load(old).complete
    again = jaxmom.grid_sweep(run, GRID, SEEDS, data=data, chunk_size=2, out=old, progress=False)
    assert again.complete
    np.testing.assert_array_equal(again["losses"], res["losses"])


def test_plots_say_what_they_show():
    import matplotlib.pyplot as plt

    betas = [0.0, 0.5, 0.8, 0.9, 0.95, 0.99]  # not evenly spaced
    acc = np.linspace(0.2, 0.9, 6 * 2 * 2).reshape(6, 2, 2)
    diverged = np.zeros((6, 2, 2), bool)
    res = jaxmom.SweepResult(
        {"beta": betas, "learning_rate": [0.01, 0.1]},
        [0, 1],
        {"test_accuracy": acc.reshape(12, 2), "final_loss": 1 / acc.reshape(12, 2)},
        diverged.reshape(12, 2),
        np.ones((12, 2), bool),
        {},
    )
    fig, axes = plt.subplots(1, 3)
    ax = res.plot_heatmap(axes[0], metric="test_accuracy")
    assert ax.get_title() == "median test_accuracy"  # no log10 of an accuracy
    assert ax.get_xlim() == (-0.5, 5.5)  # one even cell per beta, none below 0
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "0",
        "0.5",
        "0.8",
        "0.9",
        "0.95",
        "0.99",
    ]
    assert "grey" not in fig.axes[-1].get_ylabel()  # nothing diverged, nothing grey
    assert res.plot_final_loss(axes[1], metric="test_accuracy").get_yscale() == "linear"
    assert res.plot_final_loss(axes[2]).get_yscale() == "log"
    plt.close(fig)
    diverged[0, 0, :] = True
    res.diverged = diverged
    fig, ax = plt.subplots()
    res.plot_heatmap(ax)
    assert (
        ax.get_title() == "log10 median final_loss"
        and "grey: diverged" in fig.axes[-1].get_ylabel()
    )
    plt.close(fig)
