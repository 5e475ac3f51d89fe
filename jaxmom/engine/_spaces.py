"""Search spaces and their samples: a sweep's trials as a table, not a product grid.

    space = {"beta": jaxmom.Uniform(0.0, 0.99), "learning_rate": jaxmom.LogUniform(1e-3, 3.0),
             "batch": jaxmom.IntUniform(16, 64), "width": jaxmom.Choice([64, 128, 256])}
    trials = jaxmom.sample(space, 4096, method="sobol", seed=0)  # {name: np.ndarray [4096]}

``method="random"`` draws independent uniforms (NumPy's ``default_rng(seed)``); ``"sobol"`` and
``"halton"`` are scrambled, seeded quasi-random points from ``scipy.stats.qmc``, which cover the
space more evenly than random ones (Sobol's balance holds for a power-of-two ``n``). Every point
of the unit cube is mapped to each hyperparameter's own range: linearly, in log space, to the
integers ``low..high`` (both included), or to one of the choices.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from jaxmom.engine._checks import check_grid

METHODS = ("random", "sobol", "halton")


def _number(value, what: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Uniform:
    """Uniform on ``[low, high)``.

    Args:
      low, high: the bounds, finite numbers with ``low < high``.

    Examples:
      >>> import jaxmom
      >>> t = jaxmom.sample({"beta": jaxmom.Uniform(0.0, 0.99)}, 4, seed=0)
      >>> bool(((t["beta"] >= 0) & (t["beta"] < 0.99)).all())
      True
    """

    low: float
    high: float

    def check(self, name: str) -> None:
        lo, hi = _number(self.low, f"{name}: low"), _number(self.high, f"{name}: high")
        if not lo < hi:
            raise ValueError(f"{name}: {type(self).__name__} needs low < high, got {self}")

    def map(self, u: np.ndarray) -> np.ndarray:
        return self.low + u * (self.high - self.low)


@dataclass(frozen=True)
class LogUniform(Uniform):
    """Uniform in log space on ``[low, high)``, ``0 < low < high``: as many points between 1e-3
    and 1e-2 as between 0.1 and 1 (a learning rate's usual scale).

    Args:
      low, high: the bounds, ``0 < low < high``.
    """

    def check(self, name: str) -> None:
        super().check(name)
        if not self.low > 0:
            raise ValueError(f"{name}: LogUniform needs 0 < low, got {self}")

    def map(self, u: np.ndarray) -> np.ndarray:
        lo, hi = math.log(self.low), math.log(self.high)
        return np.minimum(np.exp(lo + u * (hi - lo)), np.nextafter(self.high, 0))


@dataclass(frozen=True)
class IntUniform:
    """The integers ``low..high``, both included, equally likely.

    Args:
      low, high: Python integers, ``low <= high``, each fitting the dtype the runs use.
    """

    low: int
    high: int

    def check(self, name: str) -> None:
        for what, v in (("low", self.low), ("high", self.high)):
            if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{name}: IntUniform's {what} must be an integer, got {v!r}")
        if not self.low <= self.high:
            raise ValueError(f"{name}: IntUniform needs low <= high, got {self}")
        if not (-(2**63) <= self.low and self.high < 2**63):
            raise ValueError(f"{name}: IntUniform's bounds must fit int64, got {self}")

    def map(self, u: np.ndarray) -> np.ndarray:
        n = self.high - self.low + 1
        return self.low + np.minimum((u * n).astype(np.int64), n - 1)


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (numbers), equally likely.

    Args:
      values: a non-empty sequence of numbers, e.g. ``Choice([32, 64, 128])``.
    """

    values: Sequence[float]

    def check(self, name: str) -> None:
        values = self.values
        if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
            raise TypeError(f"{name}: Choice needs a sequence of numbers, got {values!r}")
        if not len(values):
            raise ValueError(f"{name}: Choice needs a non-empty sequence of numbers, got {self}")
        for v in self.values:
            _number(v, f"{name}: a choice")

    def map(self, u: np.ndarray) -> np.ndarray:
        values = np.asarray(self.values)
        return values[np.minimum((u * len(values)).astype(np.int64), len(values) - 1)]


Space = Mapping[str, Uniform | LogUniform | IntUniform | Choice]


def check_space(space: Space) -> None:
    """Raises, naming the hyperparameter, unless ``space`` maps names to distributions whose
    bounds are finite and not empty."""
    if not isinstance(space, Mapping) or not space:
        raise TypeError(f"space must be a non-empty dict of name -> distribution, got {space!r}")
    for name, dist in space.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"space names must be non-empty strings, got {name!r}")
        if not isinstance(dist, Uniform | IntUniform | Choice):
            raise TypeError(
                f"space[{name!r}] must be jaxmom.Uniform, LogUniform, IntUniform or Choice, got "
                f"{dist!r}"
            )
        dist.check(repr(name))


def sample(space: Space, n: int, *, method: str = "random", seed: int = 0) -> dict:
    """``n`` points of ``space``: ``{name: np.ndarray [n]}``, the same for the same seed.

    Args:
      space: name -> :class:`Uniform`, :class:`LogUniform`, :class:`IntUniform` or
        :class:`Choice`.
      n: points, >= 1.
      method: ``"random"``, or quasi-random ``"sobol"`` / ``"halton"`` (scrambled, seeded).
      seed: an integer >= 0.

    Returns:
      ``{name: np.ndarray [n]}``, a table of trials for :func:`jaxmom.trial_sweep`.

    Examples:
      >>> import jaxmom
      >>> space = {"beta": jaxmom.Uniform(0, 0.99), "learning_rate": jaxmom.LogUniform(1e-3, 1)}
      >>> trials = jaxmom.sample(space, 8, method="sobol", seed=0)
      >>> sorted(trials), trials["beta"].shape
      (['beta', 'learning_rate'], (8,))
    """
    check_space(space)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got n={n!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got method={method!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got seed={seed!r}")
    d = len(space)
    if method == "random":
        u = np.random.default_rng(int(seed)).random((int(n), d))
    else:
        from scipy.stats import qmc

        engine = qmc.Sobol if method == "sobol" else qmc.Halton
        key = "rng" if "rng" in inspect.signature(engine).parameters else "seed"
        with warnings.catch_warnings():  # the docstring says it: no warning per call
            warnings.filterwarnings("ignore", "The balance properties of Sobol", UserWarning)
            u = engine(d, scramble=True, **{key: int(seed)}).random(int(n))
    return {name: dist.map(u[:, i]) for i, (name, dist) in enumerate(space.items())}


def product(grid: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    """A grid as a table of trials: every combination of its axes' values, in C order (the
    last axis fastest), one column per axis, e.g. for :func:`jaxmom.halving_sweep`.

    Args:
      grid: axis name -> 1-D values, as :func:`jaxmom.grid_sweep` takes.

    Returns:
      ``{name: np.ndarray [points]}``.

    Examples:
      >>> import jaxmom
      >>> t = jaxmom.product({"beta": [0.0, 0.9], "learning_rate": [0.1, 0.01]})
      >>> t["beta"].tolist(), t["learning_rate"].tolist()
      ([0.0, 0.0, 0.9, 0.9], [0.1, 0.01, 0.1, 0.01])"""

    axes = check_grid(grid)
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    return {name: m.ravel() for name, m in zip(axes, mesh, strict=True)}
