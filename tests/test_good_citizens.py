"""jaxmom leaves the user's process as it found it: plots for files never touch pyplot's backend
or open figures, and the umask is read, never set."""

import builtins
import os
import subprocess
import sys

import pytest

from jaxmom.common import umask

PLOTS = r"""
import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
import jax, jax.numpy as jnp, jaxmom
from jaxmom.bench import _report

mine = plt.figure()
res = jaxmom.grid_sweep(lambda hp, key: {"final_loss": hp["beta"] * jnp.ones(())},
                        {"beta": [0.1, 0.5], "lr": [1.0, 2.0]}, progress=False)
res.plot("sweep.png")
report = {"rows": [{"method": "a", "models": 1, "model_steps_per_s": 3.0}],
          "device": {"kind": "cpu", "count": 1}, "date": "2026-12-06"}
_report.plot(report, "bench.png", methods=["a"])
print(matplotlib.get_backend(), plt.get_fignums() == [mine.number], plt.gcf() is mine)
"""


def test_plots_leave_the_users_backend_and_figures_alone(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", PLOTS], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["svg", "True", "True"]
    assert (tmp_path / "sweep.png").stat().st_size > 0 and (tmp_path / "bench.png").is_file()


@pytest.mark.parametrize("proc", [True, False])
def test_the_umask_is_read_without_setting_it(monkeypatch, proc):
    old = os.umask(0o027)
    try:
        real_open = builtins.open

        def no_proc(path, *args, **kwargs):
            if str(path).startswith("/proc"):
                raise OSError("no /proc here")
            return real_open(path, *args, **kwargs)

        if not proc:
            monkeypatch.setattr(builtins, "open", no_proc)

        def refuse(mask):
            raise AssertionError("os.umask called: it races with threads creating files")

        monkeypatch.setattr(os, "umask", refuse)
        assert umask() == 0o027
    finally:
        monkeypatch.undo()
        os.umask(old)


def test_plot_draws_the_metric_best_ranks_by_on_the_axes_it_spans(tmp_path, monkeypatch):
    """res.plot(path, metric=...) draws that metric (an accuracy, maximised), and learning
    rates over decades on a log axis."""
    import jax.numpy as jnp
    import matplotlib.figure
    import numpy as np

    import jaxmom

    drawn = []
    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(
        matplotlib.figure.Figure,
        "savefig",
        lambda fig, *a, **k: (drawn.append(fig), real(fig, *a, **k))[1],
    )

    def train_fn(hp, key):
        return {
            "final_loss": hp["learning_rate"] + 0.0 * hp["beta"],
            "test_accuracy": 1.0 - hp["beta"] * jnp.ones(()),
        }

    grid = {"learning_rate": np.logspace(-4, 0, 9), "beta": np.array([0.0, 0.5, 0.9])}
    res = jaxmom.grid_sweep(train_fn, grid, progress=False)
    res.plot(tmp_path / "a.png", metric="test_accuracy")
    lines = drawn[-1].axes[0]
    assert lines.get_ylabel() == "test accuracy" and lines.get_xscale() == "log"
    assert lines.get_yscale() == "linear"  # an accuracy to maximise: never a log scale
    res.plot(tmp_path / "b.png")
    assert drawn[-1].axes[0].get_ylabel() == "final loss"
