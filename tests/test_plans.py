"""A sweep's plan (how its steps run) never changes its runs: a conv model with BatchNorm and
Dropout gives the same outputs as one scan, in segments written out (runs unrolled or vmapped,
with a remainder segment), under grid and halving sweeps; a store resumes under another
plan; the rule picks segments for a convolution on a CPU and a scan for an MLP; a device is
never given a copy of another's work; a repeated sweep compiles nothing; bad plans are refused
before any compute."""

import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from flax import nnx

import jaxmom

SCAN = {"form": "scan"}
UNROLLED = {"form": "segments", "vectorize": "unroll", "segment_steps": 3}
VMAPPED = {"form": "segments", "vectorize": "vmap"}
GRID = {"beta": [0.0, 0.9], "learning_rate": [0.05, 0.2]}


class ConvNet(nnx.Module):
    """A small conv net with BatchNorm and Dropout, on 8x8 digits."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, kernel_size=(3, 3), rngs=rngs)
        self.norm = nnx.BatchNorm(4, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)
        self.out = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.avg_pool(nnx.relu(self.norm(self.conv(x))), window_shape=(2, 2), strides=(2, 2))
        return self.out(self.drop(x.reshape(x.shape[0], -1)))


def _optimizer(beta, learning_rate):
    return jaxmom.sgd_momentum(learning_rate, beta)


LOSS = optax.softmax_cross_entropy_with_integer_labels
TASK = jaxmom.nnx_task(
    ConvNet, LOSS, _optimizer, batch_size=16, metrics={"accuracy": jaxmom.accuracy}
)


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int32)
    return x[:64], y[:64], x[1000:1032], y[1000:1032]


def _train_fn():
    return jaxmom.nnx_train_fn(
        ConvNet,
        LOSS,
        _optimizer,
        epochs=2,
        batch_size=16,
        metrics={"accuracy": jaxmom.accuracy},
        record_every=1,
    )


FN = _train_fn()


@pytest.fixture(scope="module")
def by_plan(data):
    fn = FN
    return {
        str(p): jaxmom.grid_sweep(fn, GRID, (0, 1), data=data, progress=False, plan=p)
        for p in (SCAN, UNROLLED, VMAPPED, None)
    }


def _close(a, b):
    for name in a.outputs:
        np.testing.assert_allclose(
            np.asarray(b[name]), np.asarray(a[name]), rtol=1e-6, atol=1e-6, err_msg=name
        )


@pytest.mark.parametrize("plan", [UNROLLED, VMAPPED, None])
def test_segments_give_the_scan_runs(by_plan, plan):
    _close(by_plan[str(SCAN)], by_plan[str(plan)])
    assert by_plan[str(plan)]["step_losses"].shape == (2, 2, 2, 8)  # [beta, lr, seed, steps]


def test_the_rule_runs_a_convolution_on_a_cpu_in_segments_and_an_mlp_in_a_scan(by_plan, data):
    chosen = by_plan["None"].metadata["plan"]
    assert (chosen["form"], chosen["vectorize"]) == ("segments", "unroll")
    assert chosen["devices"] == min(jax.device_count(), 2)  # 4 runs unrolled: 2 blocks
    assert "convolution" in chosen["reason"]
    assert by_plan[str(UNROLLED)].metadata["plan"]["reason"].startswith("forced")
    mlp = jaxmom.nnx_train_fn(
        lambda rngs: nnx.Linear(64, 10, rngs=rngs), LOSS, _optimizer, epochs=1, batch_size=16
    )
    flat = (data[0].reshape(64, -1), data[1])
    res = jaxmom.grid_sweep(mlp, GRID, data=flat, progress=False)
    assert res.metadata["plan"]["form"] == "scan" and res.metadata["plan"]["vectorize"] == "vmap"


def test_the_plan_is_in_the_progress_label(data, capsys):
    jaxmom.trial_sweep(_train_fn(), {"beta": [0.5], "learning_rate": [0.1]}, data=data)
    assert "segments of 8, 1 unrolled, 1 device" in capsys.readouterr().err


def test_a_repeated_sweep_in_segments_compiles_nothing(by_plan, data):
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compiles.append(name) if "backend_compile" in name else None
    )
    again = jaxmom.grid_sweep(FN, GRID, (0, 1), data=data, progress=False, plan=UNROLLED)
    assert compiles == []
    for name in again.outputs:
        np.testing.assert_array_equal(again[name], by_plan[str(UNROLLED)][name])


def test_a_store_resumes_under_another_plan(tmp_path, data, by_plan):
    out = tmp_path / "s.zarr"
    kw = dict(data=data, out=out, progress=False, chunk_size=2)
    first = jaxmom.grid_sweep(FN, GRID, (0, 1), **kw, plan=SCAN)
    assert first.metadata["plan"]["block_runs"] == 2
    (out / "status" / "c" / "1" / "0").unlink()  # a block lost, as a kill before its write
    second = jaxmom.grid_sweep(FN, GRID, (0, 1), **kw, plan=VMAPPED)
    assert second.metadata["computation"] == first.metadata["computation"]
    _close(by_plan[str(SCAN)], second)


def test_halving_in_segments_makes_the_scan_decisions(data):
    trials = jaxmom.sample(
        {"beta": jaxmom.Uniform(0.0, 0.95), "learning_rate": jaxmom.LogUniform(0.01, 0.5)}, 6
    )
    kw = dict(data=data, min_steps=2, max_steps=6, eta=3, metric="test_loss", progress=False)
    scan = jaxmom.halving_sweep(TASK, trials, **kw, plan="scan")
    segs = jaxmom.halving_sweep(TASK, trials, **kw, plan="segments")
    np.testing.assert_array_equal(segs.rungs["reached"], scan.rungs["reached"])
    np.testing.assert_allclose(segs.rungs["metric"], scan.rungs["metric"], rtol=1e-6, atol=1e-6)


_FEWER = """
import sys, numpy as np, jaxmom
sys.path.insert(0, "tests")
from test_plans import _train_fn, GRID
from sklearn.datasets import load_digits
d = load_digits()
x = (d.images / 16.0).astype(np.float32)[..., None]; y = d.target.astype(np.int32)
data = (x[:64], y[:64], x[1000:1032], y[1000:1032])
one = jaxmom.trial_sweep(_train_fn(), {"beta": [0.5], "learning_rate": [0.1]}, data=data,
                         progress=False, plan={"vectorize": "vmap", "devices": 3})
three = jaxmom.grid_sweep(_train_fn(), GRID, (0,), data=data, progress=False,
                          plan={"form": "segments", "vectorize": "vmap", "devices": 3,
                                "block_runs": 1, "segment_steps": 8})
print(one.metadata["plan"]["devices"], three.metadata["plan"]["devices"])
np.save(sys.argv[1], three["test_loss"])
"""


def test_fewer_runs_than_devices_run_on_fewer_devices(tmp_path, by_plan):
    """On 3 host devices: 1 run uses one device; 4 blocks run as a call on 3 devices and a
    last call of one block on one device (no copy of a block on the idle two); every run is
    the one-device run."""
    env = dict(__import__("os").environ, XLA_FLAGS="--xla_force_host_platform_device_count=3")
    env["PYTHONPATH"] = "."
    got = subprocess.run(
        [sys.executable, "-c", _FEWER, str(tmp_path / "t.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert got.returncode == 0, got.stderr[-2000:]
    assert got.stdout.split() == ["1", "3"]
    loss = np.load(tmp_path / "t.npy")
    np.testing.assert_allclose(loss, by_plan[str(SCAN)]["test_loss"][..., :1], rtol=1e-6)


@pytest.mark.parametrize(
    "plan, message",
    [
        ("fast", "plan must be 'auto'"),
        ({"form": "loop"}, "plan form must be one of"),
        ({"vectorize": "pmap"}, "plan vectorize must be one of"),
        ({"devices": 0}, "plan devices"),
        ({"devices": 99}, "devices=99 is more than"),
        ({"speed": 1}, "plan has no field 'speed'"),
        ({"form": "scan", "vectorize": "unroll"}, "needs form 'segments'"),
        (3, "plan must be 'auto'"),
    ],
)
def test_a_bad_plan_is_refused_before_any_compute(plan, message, data):
    with pytest.raises((ValueError, TypeError), match=message):
        jaxmom.grid_sweep(_train_fn(), GRID, data=data, progress=False, plan=plan)


def test_segments_need_a_train_function_cut_into_segments():
    with pytest.raises(ValueError, match="needs a train function cut into segments"):
        jaxmom.grid_sweep(
            lambda hp, key: {"x": hp["beta"]}, {"beta": [0.1]}, progress=False, plan="segments"
        )


def test_asha_on_a_conv_net_runs_its_lanes_unrolled_and_trains_the_runs_of_trial_sweep(data):
    """The lane pool follows the plan: a convolution on a CPU runs its lanes written out under
    shard_map, in segments; the trials it trains to the end are trial_sweep's runs."""
    space = {"beta": jaxmom.Uniform(0.0, 0.95), "learning_rate": jaxmom.LogUniform(1e-3, 1.0)}
    kw = dict(data=data, min_steps=4, max_steps=12, metric="test_accuracy", progress=False)
    res = jaxmom.asha_sweep(TASK, space, 9, (0, 1), **kw)
    plan = res.metadata["plan"]
    assert (plan["form"], plan["vectorize"]) == ("segments", "unroll")
    done = np.flatnonzero(res.rungs["reached"] == 12)
    table = {k: v[done] for k, v in res.trials.items()}
    ref = jaxmom.trial_sweep(TASK.train_fn(12), table, (0, 1), data=data, progress=False)
    for name in ref.outputs:
        np.testing.assert_allclose(res[name][done], ref[name], rtol=1e-5, atol=1e-6)
