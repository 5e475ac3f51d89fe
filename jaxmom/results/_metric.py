"""Which way a metric is better."""

from __future__ import annotations


def metric_mode(metric: str, mode: str | None = None) -> str:
    """``"min"`` or ``"max"``: ``mode`` checked, or by the name when ``None`` (``"max"`` for a
    name holding ``accuracy``, as ``test_accuracy``; ``"min"`` for the rest, as losses)."""
    if mode is None:
        return "max" if "accuracy" in metric.lower() else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got mode={mode!r}")
    return mode
