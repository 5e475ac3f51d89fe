"""The float32 matmul peak a benchmark divides by, measured so that it holds still.

One timing of one matmul at the start of a run is a poor peak: a CPU's clock, its neighbours on
a shared host and its caches move it by 3x between runs. :class:`Peak` times a matmul large
enough to reach the peak (best of several calls) again and again through a run, between the
methods being measured, and reports the best sample as the peak with the spread of the samples
beside it. :func:`theoretical` reads what the hardware could do at most: on a CPU, cores x
float32 lanes x 2 (a fused multiply-add) x FMA units x clock, from ``/proc/cpuinfo``; on a GPU,
from its name.
"""

from __future__ import annotations

import os
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

#: float32 TFLOP/s of NVIDIA data-centre GPUs (dense, without / with TF32 tensor cores), from
#: the vendor's data sheets; JAX's default matmul precision on them uses TF32.
GPU_TFLOPS = {
    "H200": (67.0, 494.7),
    "H100 80GB HBM3": (67.0, 494.7),  # SXM
    "H100 PCIe": (51.2, 378.0),
    "H100": (67.0, 494.7),
    "A100": (19.5, 156.0),
    "L40S": (91.6, 183.0),
    "L4": (30.3, 60.0),
}


class Peak:
    """Samples of the float32 matmul rate, taken whenever :meth:`sample` is called.

    Args:
      size: the matmul's side (``size x size`` by itself): 2048 reaches a CPU's peak, 8192 a
        GPU's.
      calls: timed calls per sample; a sample is the best of them.
    """

    def __init__(self, size: int, calls: int = 5):
        self.size, self.calls = int(size), int(calls)
        self.samples: list[float] = []
        a = jax.random.normal(jax.random.key(0), (self.size, self.size), jnp.float32)
        self._a, self._f = a, jax.jit(lambda a: a @ a)
        jax.block_until_ready(self._f(a))  # compiled before the first sample

    def sample(self) -> float:
        """One more sample (GFLOP/s), kept."""
        best = np.inf
        for _ in range(self.calls):
            t0 = time.perf_counter()
            jax.block_until_ready(self._f(self._a))
            best = min(best, time.perf_counter() - t0)
        gflops = 2 * self.size**3 / best / 1e9
        self.samples.append(gflops)
        return gflops

    @property
    def gflops(self) -> float:
        """The peak: the best sample."""
        return max(self.samples) if self.samples else self.sample()

    def report(self) -> dict:
        """What a bench report records: the peak, the spread of the samples, the size."""
        s = np.asarray(self.samples or [self.sample()])
        return {
            "gflops": float(s.max()),
            "median_gflops": float(np.median(s)),
            "min_gflops": float(s.min()),
            "samples": len(s),
            "spread": float((s.max() - s.min()) / s.max()),
            "matmul_size": self.size,
            "theoretical": theoretical(),
        }


def theoretical() -> dict | None:
    """The device's theoretical float32 peak, where it can be read: ``{"gflops", "how"}``."""
    device = jax.devices()[0]
    if device.platform == "gpu":
        name = device.device_kind
        for key, (plain, tf32) in GPU_TFLOPS.items():
            if key in name:
                how = f"{name}: vendor data sheet (float32; TF32 tensor cores)"
                return {"gflops": plain * 1e3, "tf32_gflops": tf32 * 1e3, "how": how}
        return None
    if device.platform != "cpu":
        return None
    return cpu_theoretical(_read("/proc/cpuinfo"), os.cpu_count() or 1)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def cpu_theoretical(cpuinfo: str, cores: int) -> dict | None:
    """cores x float32 lanes x 2 x FMA units x clock, from the text of ``/proc/cpuinfo``.

    Lanes: 16 with AVX-512, 8 with AVX2, 4 with SSE. FMA units: 2, as on the server cores of
    the last decade, except AMD's AVX-512 (Zen 4), which runs 512-bit operations on 256-bit
    units: counted as 8 lanes x 2 units. The clock is the one the kernel reports now ("cpu
    MHz"), not the turbo the core may reach: the estimate says which it used.
    """
    flags = set(re.findall(r"^flags\s*:\s*(.*)$", cpuinfo, re.M)[0].split()) if cpuinfo else set()
    mhz = re.findall(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M)
    if not flags or not mhz:
        return None
    amd = "AuthenticAMD" in cpuinfo
    lanes = 16 if "avx512f" in flags and not amd else 8 if "avx2" in flags else 4
    units = 2 if "fma" in flags else 1
    ghz = float(np.median([float(m) for m in mhz])) / 1e3
    gflops = cores * lanes * 2 * units * ghz
    return {
        "gflops": gflops,
        "how": f"{cores} cores x {lanes} float32 lanes x 2 (FMA) x {units} FMA units x "
        f"{ghz:.2f} GHz (cpu MHz now)",
    }
