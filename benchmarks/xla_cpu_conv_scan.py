"""A minimal reproduction, for XLA upstream: on XLA:CPU, a convolution's weight gradient inside
a ``while`` loop (any ``lax.scan``) takes a slow path; the same steps in straight-line code are
several times faster.

    python benchmarks/xla_cpu_conv_scan.py [--steps 16] [--out benchmarks/xla_cpu_conv_scan.json]

Plain JAX, no jaxmom, no Flax: the Flax NNX MNIST tutorial's CNN (two 3x3 convolutions with
average pooling, two dense layers) on 8x8 inputs, batch 32, plain SGD. It times ``steps`` steps
three ways (each compiled once, median of 5 calls) and prints the ``convolution`` lines of each
optimised HLO, whose ``dim_labels`` differ: inside the loop the weight gradient keeps
``f01b_i01o->01bf``-like labels, in straight-line code it becomes ``b01f_01io->b01f``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import time

import jax
import jax.numpy as jnp


def init(key):
    k = jax.random.split(key, 4)
    he = lambda k, shape, fan_in: jax.random.normal(k, shape) * (2.0 / fan_in) ** 0.5  # noqa: E731
    return {
        "c1": he(k[0], (3, 3, 1, 32), 9),
        "c2": he(k[1], (3, 3, 32, 64), 288),
        "d1": he(k[2], (256, 256), 256),
        "d2": he(k[3], (256, 10), 256),
    }


def conv(x, w):
    return jax.lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def pool(x):
    window = (1, 2, 2, 1)
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, window, window, "VALID") / 4


def loss(p, x, y):
    h = pool(jax.nn.relu(conv(x, p["c1"])))
    h = pool(jax.nn.relu(conv(h, p["c2"])))
    h = jax.nn.relu(h.reshape(h.shape[0], -1) @ p["d1"])
    logits = h @ p["d2"]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))


def step(p, batch):
    x, y = batch
    g = jax.grad(loss)(p, x, y)
    return jax.tree.map(lambda a, b: a - 0.05 * b, p, g), None


def in_scan(p, xs, ys):
    return jax.lax.scan(step, p, (xs, ys))[0]


def unrolled_scan(p, xs, ys):
    return jax.lax.scan(step, p, (xs, ys), unroll=True)[0]


def straight_line(p, xs, ys):
    for i in range(xs.shape[0]):
        p = step(p, (xs[i], ys[i]))[0]
    return p


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    key = jax.random.key(0)
    p = init(key)
    xs = jax.random.normal(key, (args.steps, 32, 8, 8, 1))
    ys = jax.random.randint(key, (args.steps, 32), 0, 10)
    report: dict = {
        "device": str(jax.devices()[0]),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "jax": jax.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "steps": args.steps,
        "forms": {},
    }
    ref = None
    for name, fn in [
        ("lax.scan", in_scan),
        ("lax.scan(unroll=True)", unrolled_scan),
        ("straight-line", straight_line),
    ]:
        t = time.perf_counter()
        compiled = jax.jit(fn).lower(p, xs, ys).compile()
        compile_s = time.perf_counter() - t
        out = jax.block_until_ready(compiled(p, xs, ys))
        times = []
        for _ in range(5):
            t = time.perf_counter()
            jax.block_until_ready(compiled(p, xs, ys))
            times.append(time.perf_counter() - t)
        hlo = compiled.as_text()
        labels = sorted(set(re.findall(r"dim_labels=(\S+?)[,}\s]", hlo)))
        while_loops = len(re.findall(r"\bwhile\(", hlo))
        diff = (
            0.0
            if ref is None
            else max(
                float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
                for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref), strict=True)
            )
        )
        ref = out if ref is None else ref
        med = statistics.median(times)
        report["forms"][name] = {
            "steps_per_second": args.steps / med,
            "compile_seconds": compile_s,
            "while_loops": while_loops,
            "conv_dim_labels": labels,
            "max_difference_to_scan_relative_to_max": diff,
        }
        print(
            f"{name:24s} {args.steps / med:8.0f} steps/s  compile {compile_s:5.2f} s  "
            f"while loops {while_loops}  max diff / max {diff:.1e}"
        )
        print(f"{'':24s} convolution dim_labels: {', '.join(labels)}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
