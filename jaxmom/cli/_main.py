"""The ``jaxmom`` command (also ``python -m jaxmom``).

    jaxmom sweep --betas 0:0.99:256 --lrs 0.01,0.03 --seeds 4 --out sweep.zarr
    jaxmom bench [--quick] [--out benchmarks/NAME.json] [--models 1,64,1024]
    jaxmom theory --mu 2 --L 20

On a CPU, XLA runs most of a sweep on one core; the command splits the host into one JAX
device per core (``jax_num_cpu_devices``) before JAX starts, so the runs are sharded over all
of them. ``--devices N`` chooses another count.
"""

from __future__ import annotations

import argparse
import sys

from jaxmom import __version__
from jaxmom.bench import chapter as chapter_bench
from jaxmom.cli import _bench as bench_command
from jaxmom.cli import _commands as commands
from jaxmom.cli._args import (
    axis,
    eta,
    float_list,
    int_list,
    nonnegative_int,
    positive_int,
    sample_flag,
    seed_count,
)


def _add_devices(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--devices",
        type=positive_int,
        default=None,
        help="CPU only: host devices to split into (default: one per core)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors are one line (the usage is what ``--help`` is for)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxmom", description="Heavy-ball momentum in JAX.")
    parser.add_argument("--version", action="version", version=f"jaxmom {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sw = sub.add_parser("sweep", help="train the chapter's MLP over a (beta, lr, seed) grid")
    sw.add_argument(
        "--betas",
        type=axis,
        default=float_list("0:0.99:64"),
        help="START:STOP:NUM or a comma list (default 0:0.99:64); with --sample a range "
        "LOW:HIGH or log:LOW:HIGH",
    )
    sw.add_argument(
        "--lrs",
        type=axis,
        default=[0.01],
        help="learning rates (default 0.01), as --betas: e.g. --sample sobol:1024 --lrs log:1e-3:3",
    )
    sw.add_argument(
        "--sample",
        type=sample_flag,
        default=None,
        metavar="METHOD:N",
        help="N trials drawn from the ranges of --betas and --lrs (METHOD: random, sobol or "
        "halton; a comma list is a choice among its values) instead of their grid",
    )
    sw.add_argument(
        "--halving",
        type=eta,
        default=None,
        metavar="ETA",
        help="successive halving: every trial trained --min-epochs, then the best 1/ETA "
        "(by final loss) ETA times longer, ... up to --epochs",
    )
    sw.add_argument(
        "--min-epochs",
        type=positive_int,
        default=None,
        help="with --halving: the epochs of the first rung (default 1)",
    )
    sw.add_argument(
        "--seeds", type=seed_count, default=1, help="number of seeds: 0..N-1 (N <= 10,000,000)"
    )
    sw.add_argument("--epochs", type=positive_int, default=12, help="epochs a run (default 12)")
    sw.add_argument(
        "--batch-size", type=positive_int, default=32, help="examples a step (default 32)"
    )
    sw.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    sw.add_argument("--chunk-size", type=positive_int, default=None, help="runs per compiled call")
    sw.add_argument(
        "--record-every",
        type=nonnegative_int,
        default=1,
        help="keep every k-th step's loss (default 1: all; 0: epoch losses only)",
    )
    sw.add_argument(
        "--out",
        default=None,
        help="FOLDER (e.g. sweep.zarr): a store written block by block; "
        "the same command again resumes it",
    )
    sw.add_argument("--csv", default=None, help="FILE.csv: one row per run")
    sw.add_argument(
        "--plot", default=None, help="FILE.png: final loss, heatmap, curves (.png is added)"
    )
    _add_devices(sw)
    sw.add_argument(
        "--distributed",
        action="store_true",
        help="run as one process of several (jax.distributed.initialize); without the three "
        "flags below, the cluster (SLURM, Open MPI, ...) is detected",
    )
    sw.add_argument("--coordinator", default=None, help="HOST:PORT of process 0")
    sw.add_argument(
        "--init-timeout",
        type=positive_int,
        default=None,
        help="seconds to wait for every process to join (default 30); then one line, exit 2",
    )
    sw.add_argument("--num-processes", type=positive_int, default=None, help="processes in all")
    sw.add_argument("--process-id", type=nonnegative_int, default=None, help="this process, 0..N-1")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.set_defaults(run=commands.sweep, subparser=sw)

    be = sub.add_parser(
        "bench",
        help="PyTorch, optax, Optuna and jaxmom side by side on the chapter's task or digits",
    )
    be.add_argument(
        "--task",
        choices=("chapter", "digits", "search", "models"),
        default="chapter",
        help="chapter: its MLP, six ways (default); digits: a sweep against a hand-written vmap, "
        "Optuna and hyperoptax; search: exhaustive, random, successive halving, Hyperband and "
        "Optuna (TPE + Hyperband pruner, and in batches) over one space (--models N: N "
        "configurations, default 729); models: an MLP, CNNs and attention trained by Flax's "
        "tutorial loop, a hand-written vmap of a scan and jaxmom's plans (--models: runs at "
        "once, default 1,4,16,256)",
    )
    be.add_argument(
        "--nets",
        type=lambda t: [m.strip() for m in t.split(",") if m.strip()],
        default=None,
        help="with --task models: comma list from mlp,cnn,cnn_bn_dropout,attention (default all)",
    )
    be.add_argument(
        "--quick", action="store_true", help="tiny sizes (models 1,64, or 8 digits runs; 2 repeats)"
    )
    be.add_argument(
        "--out",
        default=None,
        help="FILE.json: the report (a PNG beside it); an existing report "
        "is kept unless --overwrite",
    )
    be.add_argument("--overwrite", action="store_true", help="replace an existing --out report")
    be.add_argument(
        "--models",
        type=int_list,
        default=None,
        help="models for the vmapped methods (default 1,16,256,1024,4096); with --task digits, "
        "runs in the sweep (multiples of 4, default 256,1024,4096)",
    )
    be.add_argument(
        "--methods",
        type=lambda t: [m.strip() for m in t.split(",") if m.strip()],
        default=None,
        help=f"comma list from {','.join(chapter_bench.METHODS)} (default all); with --task "
        "digits from "
        "engine,vmap,optuna,hyperoptax",
    )
    be.add_argument("--repeats", type=positive_int, default=None, help="timed calls per row")
    _add_devices(be)
    be.set_defaults(run=bench_command.bench, subparser=be)
    ve = sub.add_parser("verify", help="check every finished block of a sweep store")
    ve.add_argument("path", help="the store: a folder written by a sweep with --out / out=")
    ve.add_argument(
        "--repair",
        action="store_true",
        help="mark the damaged blocks not done, so the same sweep command runs them again",
    )
    ve.set_defaults(run=commands.verify, subparser=ve)
    th = sub.add_parser("theory", help="optimal (alpha, beta) and rates for curvatures in [mu, L]")
    th.add_argument("--mu", type=float, required=True, help="smallest curvature, > 0")
    th.add_argument("--L", type=float, required=True, help="largest curvature, >= mu")
    th.set_defaults(run=commands.theory, subparser=th)
    return parser


# flags whose value may start with a minus ("--betas -inf" as "--betas=-inf")
_SIGNED = ("--betas", "--lrs", "--mu", "--L")


def _join_signed(argv: list[str]) -> list[str]:
    """Every option of the command is long (``--x``) but ``-h``: a value after one of
    :data:`_SIGNED` that starts with a single minus is that flag's value, not an option."""
    out, i = [], 0
    while i < len(argv):
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if argv[i] in _SIGNED and nxt.startswith("-") and not nxt.startswith("--") and nxt != "-h":
            out.append(f"{argv[i]}={nxt}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """The ``jaxmom`` command.

    Args:
      argv: its arguments; ``None``: ``sys.argv[1:]``.

    Returns:
      The exit status: 0 on success, 2 for a bad flag or a fault (said in one line).
    """
    parser = _parser()
    args = parser.parse_args(_join_signed(list(sys.argv[1:] if argv is None else argv)))
    return args.run(args, args.subparser)


if __name__ == "__main__":
    sys.exit(main())
