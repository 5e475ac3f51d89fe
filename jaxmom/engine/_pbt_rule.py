"""Population-based training's decisions, on the host (Jaderberg et al. 2017): which members
copy which (exploit), the hyperparameters they then take (explore), and the line of descent of a
member. Pure NumPy, reproducible from the seed: interval ``i`` draws from
``numpy.random.default_rng([seed, 1, i])``.
"""

from __future__ import annotations

import numpy as np

from jaxmom.engine._spaces import Choice, IntUniform


def exploit(scores: np.ndarray, fraction: float, rng) -> dict[int, int]:
    """``{member: parent}``: each of the worst ``fraction`` (at least one) copies a member
    drawn from the best ``fraction``; ``scores`` lower is better, non-finite the worst."""
    n = len(scores)
    k = max(1, int(n * fraction))
    order = np.argsort(np.where(np.isfinite(scores), scores, np.inf), kind="stable")
    top, bottom = order[:k], order[n - k :]
    return {int(b): int(rng.choice(top)) for b in bottom}


def explore(hp: dict, space: dict, perturb, resample: float, rng, redraw=None) -> dict:
    """A parent's hyperparameters (``{name: value}``) explored: each redrawn from ``space``
    with probability ``resample`` (or taken from ``redraw()``, ``{name: value}``, when given:
    an Optuna study's trial), else multiplied by a factor drawn from ``perturb`` (a
    :class:`jaxmom.Choice` moves to a neighbouring value instead), clipped to the space."""
    out = {}
    for name, dim in space.items():
        value = hp[name]
        if rng.random() < resample:
            out[name] = dim.map(np.array([rng.random()]))[0] if redraw is None else redraw()[name]
        elif isinstance(dim, Choice):
            values = np.asarray(dim.values, np.float64)
            i = int(np.argmin(np.abs(values - value))) + int(rng.choice([-1, 1]))
            out[name] = dim.values[min(max(i, 0), len(values) - 1)]
        else:
            moved = float(np.clip(value * rng.choice(perturb), dim.low, dim.high))
            out[name] = round(moved) if isinstance(dim, IntUniform) else moved
    return out


def lineage(parent: np.ndarray, member: int) -> np.ndarray:
    """``[intervals]``: the member whose run ``member``'s run was during each interval, from
    ``parent`` ``[members, intervals]`` (the member each copied at the start of an interval,
    -1 for none)."""
    line = np.zeros(parent.shape[1], np.int64)
    cur = member
    for i in range(parent.shape[1] - 1, -1, -1):
        line[i] = cur
        if parent[cur, i] >= 0:
            cur = int(parent[cur, i])
    return line
