"""trial_sweep: the engine over a table of trials, equal to grid_sweep at the same points, with
the trials' values (not their numbers) in best, summary, CSV, pandas, xarray and the store."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import jaxmom
from tests.test_engine import GRID, SEEDS, _data, logistic


@pytest.fixture(scope="module")
def data():
    return _data(0)


@pytest.fixture(scope="module")
def table():
    return jaxmom.product(GRID)


@pytest.fixture(scope="module")
def grid_res(data):
    return jaxmom.grid_sweep(logistic, GRID, SEEDS, data=data, chunk_size=5, progress=False)


@pytest.fixture(scope="module")
def trial_res(data, table):
    return jaxmom.trial_sweep(logistic, table, SEEDS, data=data, chunk_size=5, progress=False)


def test_product_lists_the_grid_in_c_order():
    t = jaxmom.product({"a": [1, 2], "b": [0.5, 0.25, 0.125]})
    np.testing.assert_array_equal(t["a"], [1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(t["b"], [0.5, 0.25, 0.125] * 2)


def test_a_table_of_the_grids_points_gives_the_grids_bits(grid_res, trial_res):
    assert trial_res.axes.keys() == {"trial"} and trial_res["loss"].shape == (12, 2, 12)
    for name in ("loss", "final/w", "final/loss"):
        want = grid_res[name].reshape(12, *grid_res[name].shape[3:])
        np.testing.assert_array_equal(trial_res[name], want)


def test_best_summary_and_tables_show_the_trials_values(grid_res, trial_res, table, tmp_path):
    want, got = grid_res.best(3, "final/loss"), trial_res.best(3, "final/loss")
    for w, g in zip(want, got, strict=True):
        assert {k: g[k] for k in w} == w  # the grid's row: values, metric, spread
        assert table["beta"][g["trial"]] == g["beta"]
    text = trial_res.summary("final/loss")
    assert "12 trials x 2 seeds" in text and "learning_rate" in text.splitlines()[1]
    df = trial_res.to_dataframe()
    assert list(df.columns[:5]) == ["trial", "beta", "learning_rate", "steps", "seed"]
    np.testing.assert_array_equal(df["beta"], np.repeat(table["beta"], 2))
    np.testing.assert_array_equal(df["final/loss"], trial_res["final/loss"].ravel())
    ds = trial_res.to_xarray()
    assert ds["beta"].dims == ("trial",)
    best = ds["final/loss"].mean("seed").idxmin("trial").item()
    assert ds["beta"].sel(trial=best).item() == got[0]["beta"]
    path = trial_res.to_csv(tmp_path / "t.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header[:4] == ["trial", "beta", "learning_rate", "steps"]


def test_the_store_keeps_the_table_and_refuses_another(data, table, trial_res, tmp_path):
    out = tmp_path / "t.zarr"
    res = jaxmom.trial_sweep(
        logistic, table, SEEDS, data=data, chunk_size=5, out=out, progress=False
    )
    np.testing.assert_array_equal(res["loss"], trial_res["loss"])
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    assert attrs["axes"] == {"trial": 12} and set(attrs["trials"]["columns"]) == set(GRID)
    loaded = jaxmom.SweepResult.load(out)
    for name, values in table.items():
        np.testing.assert_array_equal(loaded.trials[name], values)
    assert loaded.best(1, "final/loss") == trial_res.best(1, "final/loss")
    # a block not done (its status chunk gone) is run again, to the same bits
    (out / "status" / "c" / "1" / "0").unlink()
    again = jaxmom.trial_sweep(logistic, table, SEEDS, data=data, out=out, progress=False)
    np.testing.assert_array_equal(again["loss"], trial_res["loss"])
    other = dict(table, beta=table["beta"][::-1])
    with pytest.raises(ValueError, match="differing: trials"):
        jaxmom.trial_sweep(logistic, other, SEEDS, data=data, out=out, progress=False)


_KILLED = """
import sys, time, numpy as np, jax, jax.numpy as jnp, jaxmom
def fn(hp, key):
    x = jax.random.normal(key, (64,)) * hp["b"]
    out = jax.lax.fori_loop(0, 200_000, lambda i, v: jnp.sin(v) * hp["a"], x)
    return {"v": out, "loss": out.sum()}
trials = jaxmom.sample({"a": jaxmom.Uniform(0.5, 1.0), "b": jaxmom.LogUniform(0.1, 1.0)}, 24)
res = jaxmom.trial_sweep(fn, trials, seeds=[0, 1], chunk_size=4, out=sys.argv[1], progress=False)
np.save(sys.argv[1] + ".npy", res["v"])
"""


def test_a_killed_trial_sweep_resumes_to_the_same_bits(tmp_path):
    out = str(tmp_path / "k.zarr")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, out])
    deadline = time.time() + 120
    while not list((tmp_path / "k.zarr" / "status" / "c").rglob("*")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not jaxmom.SweepResult.load(out).complete
    subprocess.run([sys.executable, "-c", _KILLED, out], check=True, timeout=300)
    subprocess.run([sys.executable, "-c", _KILLED, str(tmp_path / "w.zarr")], check=True)
    np.testing.assert_array_equal(np.load(out + ".npy"), np.load(tmp_path / "w.zarr.npy"))


@pytest.mark.parametrize(
    "trials, match",
    [
        ({"a": [1.0, 2.0], "b": [1.0]}, r"one length.*jaxmom.product"),
        ({"trial": [1, 2]}, "'trial' names the axis"),
        ({}, "non-empty dict"),
        ([1, 2], "non-empty dict"),
        ({"a": ["x"]}, r"trials\['a'\] must hold numbers"),
        ({"a": [True]}, r"trials\['a'\] holds bools"),
    ],
)
def test_bad_tables_are_refused_before_any_compute(trials, match):
    with pytest.raises((TypeError, ValueError), match=match):
        jaxmom.trial_sweep(lambda hp, key: {"x": key}, trials, progress=False)
