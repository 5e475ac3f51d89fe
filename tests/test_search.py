"""Search spaces and samples: bounds, log spacing, seeds, quasi-random balance, named errors."""

import numpy as np
import pytest

import jaxmom

SPACE = {
    "beta": jaxmom.Uniform(0.0, 0.99),
    "learning_rate": jaxmom.LogUniform(1e-3, 1.0),
    "batch": jaxmom.IntUniform(16, 19),
    "width": jaxmom.Choice([64, 128, 256]),
}


@pytest.mark.parametrize("method", ["random", "sobol", "halton"])
def test_samples_lie_in_their_ranges_and_repeat_with_their_seed(method):
    s = jaxmom.sample(SPACE, 4096, method=method, seed=3)
    assert all(v.shape == (4096,) for v in s.values())
    assert 0.0 <= s["beta"].min() and s["beta"].max() < 0.99
    assert 1e-3 <= s["learning_rate"].min() and s["learning_rate"].max() < 1.0
    assert set(np.unique(s["batch"]).tolist()) == {16, 17, 18, 19}
    assert set(np.unique(s["width"]).tolist()) == {64, 128, 256}
    # log spacing: the median of LogUniform(1e-3, 1) is 10^-1.5, about 0.03
    assert abs(np.log10(np.median(s["learning_rate"])) + 1.5) < 0.05
    again = jaxmom.sample(SPACE, 4096, method=method, seed=3)
    for k in SPACE:
        np.testing.assert_array_equal(s[k], again[k])
    other = jaxmom.sample(SPACE, 4096, method=method, seed=4)
    assert not np.array_equal(s["beta"], other["beta"])


def test_sobol_points_are_balanced_and_random_ones_are_not():
    """2^k scrambled Sobol points put exactly one point in each of 2^k equal cells per axis."""
    n = 1024
    for method, exact in (("sobol", True), ("random", False)):
        s = jaxmom.sample({"u": jaxmom.Uniform(0.0, 1.0)}, n, method=method, seed=0)
        counts = np.bincount((s["u"] * n).astype(int), minlength=n)
        assert (counts == 1).all() == exact


@pytest.mark.parametrize(
    "space, error, match",
    [
        ({"lr": jaxmom.LogUniform(0.0, 1.0)}, ValueError, r"'lr': LogUniform needs 0 < low"),
        ({"b": jaxmom.Uniform(0.9, 0.1)}, ValueError, r"'b': Uniform needs low < high"),
        ({"b": jaxmom.Uniform(0.0, float("inf"))}, ValueError, r"'b': high must be finite"),
        ({"b": jaxmom.Uniform(0.0, "1")}, TypeError, r"'b': high must be a number"),
        ({"n": jaxmom.IntUniform(8, 4)}, ValueError, r"'n': IntUniform needs low <= high"),
        ({"n": jaxmom.IntUniform(1.5, 4)}, TypeError, r"'n': IntUniform's low must be an int"),
        ({"w": jaxmom.Choice([])}, ValueError, r"'w': Choice needs a non-empty sequence"),
        ({"w": jaxmom.Choice([1, True])}, TypeError, r"'w': a choice must be a number"),
        ({"w": (0, 1)}, TypeError, r"space\['w'\] must be jaxmom.Uniform"),
        ({}, TypeError, "non-empty dict"),
    ],
)
def test_bad_spaces_are_refused_with_the_name(space, error, match):
    with pytest.raises(error, match=match):
        jaxmom.sample(space, 8)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n must be an integer >= 1, got n=0"):
        jaxmom.sample(SPACE, 0)
    with pytest.raises(ValueError, match="method must be one of random, sobol, halton"):
        jaxmom.sample(SPACE, 8, method="grid")
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got seed=-1"):
        jaxmom.sample(SPACE, 8, seed=-1)
