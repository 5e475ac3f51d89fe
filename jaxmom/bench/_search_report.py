"""The search bench's report: its rows as a Markdown table, and its figure."""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxmom.bench import _report as bench
from jaxmom.common import atomic_path


def table(report: dict) -> str:
    """The report's rows as a Markdown table, and its ratios."""
    header = [
        "space",
        "method",
        "best val acc",
        "its test acc",
        "model-steps",
        "seconds",
        "s to target",
        "compiles",
        "busy",
        "configuration",
    ]

    def reach(r):
        s = r.get("seconds_to_target")
        return "never" if s is None and "target" in r else ("" if s is None else f"{s:.1f}")

    rows = [
        [
            r.get("space", "digits"),
            r["method"],
            f"{r['val']:.4f}",
            f"{r['test']:.4f}",
            f"{r['model_steps']:.3g}",
            f"{r['seconds']:.1f}",
            reach(r),
            str(r.get("compiles", "")),
            "" if r.get("busy") is None else f"{r['busy']:.0%}",
            ", ".join(f"{k}={v:.3g}" for k, v in r["config"].items()),
        ]
        for r in report["rows"]
    ]
    return bench.markdown(header, rows, report["ratios"], digits=2)


def plot(report: dict, path):
    """The best validation accuracy found against wall time, a line or dot per method, a
    panel per space."""
    from matplotlib.figure import Figure  # no pyplot: the user's backend and figures stay
    from matplotlib.ticker import NullFormatter

    spaces = list(dict.fromkeys(r.get("space", "digits") for r in report["rows"]))
    fig = Figure(figsize=(7 * len(spaces), 4.8))
    axes = fig.subplots(1, len(spaces), squeeze=False)[0]
    task = report["task"]
    for ax, space in zip(axes, spaces, strict=True):
        rows = [r for r in report["rows"] if r.get("space", "digits") == space]
        for i, r in enumerate(rows):
            t, v = np.array(r["trace"], float).T
            label = f"{r['method']} ({r['model_steps']:.2g} model-steps, {r['seconds']:.1f} s)"
            style: dict[str, Any] = dict(color=f"C{i}", label=label)
            if len(t) > 1:
                ax.step(t, v, where="post", **style)
            else:
                ax.plot(t, v, "o", ms=7, **style)
        target = next((r["target"] for r in rows if "target" in r), None)
        if target is not None:
            ax.axhline(target, color="grey", ls=":", lw=1, label="exhaustive best - 0.5 pt")
            ax.set_ylim(max(0.0, target - 0.1), min(1.0, target + 0.03))
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # the decades' labels only
        ax.set_xlabel("wall time (s), compilation included")
        ax.set_ylabel("best validation accuracy found")
        ax.set_title(
            f"space {space!r}: {task['configs']} configurations x {len(task['seeds'])} seeds, "
            f"up to {task['epochs']} epochs ({report['device']['cpu']})",
            fontsize=9,
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
