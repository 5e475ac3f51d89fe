"""The matmul peak a bench divides by: the best of samples taken through the run, with their
spread, and the hardware's theoretical peak read from /proc/cpuinfo."""

import pytest

from jaxmom.bench._peak import Peak, cpu_theoretical, theoretical

EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
cpu MHz\t\t: 2450.000
flags\t\t: fpu sse sse2 avx avx2 fma
"""


def test_the_peak_is_the_best_sample_and_reports_its_spread():
    peak = Peak(128, calls=2)
    a, b = peak.sample(), peak.sample()
    report = peak.report()
    assert report["gflops"] == peak.gflops == max(a, b) > 0
    assert report["samples"] == 2 and report["min_gflops"] == min(a, b)
    assert report["spread"] == pytest.approx((max(a, b) - min(a, b)) / max(a, b))
    assert report["matmul_size"] == 128


@pytest.mark.parametrize(
    "text, cores, gflops, lanes",
    [
        (EPYC, 2, 2 * 8 * 2 * 2 * 2.45, "8 float32 lanes"),
        (EPYC.replace("avx2 fma", "avx2 fma avx512f"), 4, 4 * 8 * 2 * 2 * 2.45, "8 float32"),
        (
            EPYC.replace("AuthenticAMD", "GenuineIntel").replace("fma", "fma avx512f"),
            1,
            16 * 2 * 2 * 2.45,
            "16 float32 lanes",
        ),
        (EPYC.replace("avx avx2 fma", ""), 2, 2 * 4 * 2 * 1 * 2.45, "4 float32 lanes"),
    ],
)
def test_the_theoretical_cpu_peak_counts_cores_lanes_fma_and_clock(text, cores, gflops, lanes):
    got = cpu_theoretical(text, cores)
    assert got["gflops"] == pytest.approx(gflops) and lanes in got["how"]


def test_no_cpuinfo_means_no_theoretical_peak_and_this_machine_has_one():
    assert cpu_theoretical("", 2) is None
    here = theoretical()
    assert here is None or here["gflops"] > 0
