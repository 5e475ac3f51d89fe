"""The ``jaxmom`` command's flag types: each value checked as argparse reads it."""

from __future__ import annotations

import argparse
from typing import NamedTuple

import numpy as np

from jaxmom.engine import METHODS

#: The most values one axis flag (--betas, --lrs) or --seeds may ask for.
MAX_AXIS = 10_000_000


def seed_count(text: str) -> int:
    n = positive_int(text)
    if n > MAX_AXIS:
        raise argparse.ArgumentTypeError(
            f"{text!r} seeds: at most {MAX_AXIS:,} (seeds are 0..N-1, each below 2**32)"
        )
    return n


def float_list(text: str) -> list[float]:
    """``START:STOP:NUM`` (inclusive, like ``numpy.linspace``) or a comma list."""
    try:
        if ":" in text:
            start, stop, num = text.split(":")
            num = int(num)
            if num < 1:
                raise ValueError
            if num > MAX_AXIS:  # refused before anything is allocated
                raise argparse.ArgumentTypeError(
                    f"{text!r} asks for {num:,} values; an axis holds at most {MAX_AXIS:,}: "
                    "sweep it in parts (each its own --out)"
                )
            return np.linspace(float(start), float(stop), num).tolist()
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected START:STOP:NUM or a comma-separated list of numbers, got {text!r}"
        ) from None


class Range(NamedTuple):
    """``--betas LOW:HIGH`` or ``log:LOW:HIGH``: a range for ``--sample`` to draw from."""

    low: float
    high: float
    log: bool


def axis(text: str) -> list[float] | Range:
    """A grid axis (``START:STOP:NUM`` or a comma list) or, for ``--sample``, a range
    (``LOW:HIGH`` uniform, ``log:LOW:HIGH`` log-uniform)."""
    log = text.startswith("log:")
    parts = text.split(":")[1:] if log else text.split(":")
    if len(parts) == 2 or log:
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a range LOW:HIGH or log:LOW:HIGH, got {text!r}"
            ) from None
        return Range(low, high, log)
    return float_list(text)


def sample_flag(text: str) -> tuple[str, int]:
    method, _, n = text.partition(":")
    if method not in METHODS or not n.isdigit() or not 0 < int(n) <= MAX_AXIS:
        raise argparse.ArgumentTypeError(
            f"expected METHOD:N with METHOD one of {', '.join(METHODS)} and 1 <= N <= "
            f"{MAX_AXIS:,} (e.g. sobol:4096), got {text!r}"
        )
    return method, int(n)


def eta(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2 (keep 1/ETA), got {text!r}")
    return value


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of positive integers, got {text!r}"
        )
    return values


def nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
