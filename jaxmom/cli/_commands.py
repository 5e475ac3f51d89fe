"""What each ``jaxmom`` command does, once :mod:`jaxmom.cli` has parsed its flags: ``sweep``,
``bench``, ``theory`` and ``verify``. Each takes ``(args, parser)`` and returns the exit status;
every path and flag is checked before JAX starts, and a fault ends in one line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from jaxmom import chapter
from jaxmom import theory as closed_forms
from jaxmom.cli import _cluster as cluster
from jaxmom.cli import _search as cli_search
from jaxmom.cli._cluster import check_coordinator, partner_failed, stop
from jaxmom.cli._search import n_points
from jaxmom.common import check_output_file
from jaxmom.engine import rung_stores
from jaxmom.results import READABLE, Lock, check_attrs, check_store_path, damaged_blocks, unmark


def setup_devices(n: int | None = None) -> None:
    """Split the host into ``n`` JAX CPU devices (default one per core), so a sweep shards
    over every core. Call it before JAX starts its backends (before the first computation);
    it changes nothing on a GPU or TPU, whose devices are used as they are.

    Args:
      n: host devices; ``None``: one per core.

    Returns:
      ``None``.
    """
    import jax

    count = n or os.cpu_count() or 1
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except (AttributeError, RuntimeError):  # older JAX, or a backend already started
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}"


def _count(n: int, noun: str) -> str:
    """``"1 seed"``, ``"4 seeds"``."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def fail(parser, message: str) -> int:
    """One line on stderr, exit status 2 (as argparse's errors, without the usage)."""
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2


def _steps(gap: float) -> int | None:
    """Steps for the error to fall by 1e-6 at the linear rate ``1 - gap``; ``None`` where
    float64 cannot say (a gap that underflows, a count that overflows)."""
    import math

    if gap >= 1:
        return 1
    n = math.log(1e-6) / math.log1p(-gap) if gap > 0 else math.inf
    return math.ceil(n) if math.isfinite(n) else None


def theory(args, parser) -> int:
    import math

    mu, L = args.mu, args.L
    if not (math.isfinite(mu) and math.isfinite(L) and 0 < mu <= L):
        parser.error(f"need 0 < mu <= L, both finite; got --mu {mu} --L {L}")
    import jax

    with jax.enable_x64(True):  # float32 rounds a rate of 1 - 1e-8 to 1, and 1e39 to inf
        alpha, beta, rate = (float(v) for v in closed_forms.optimal_momentum(mu, L))
        gd_alpha, gd_rate = (float(v) for v in closed_forms.optimal_gd(mu, L))
    # 1 - rate, without the cancellation of computing the rate first
    gaps = (2 * math.sqrt(mu) / (math.sqrt(L) + math.sqrt(mu)), 2 * mu / (L + mu))
    steps = [_steps(g) for g in gaps]
    if None in steps or not all(math.isfinite(v) and v > 0 for v in (alpha, gd_alpha)):
        parser.error(
            f"--mu {mu:g} --L {L:g}: the condition number or the step sizes are beyond float64 "
            "(no answer can be computed); rescale the curvatures"
        )

    def words(n):
        return f"{n:,} step{'s' if n != 1 else ''} to 1e-6"

    def show(r, gap):  # a rate of 1 - 1e-12 is not "1"
        return f"1 - {gap:.6g}" if gap < 1e-3 else f"{r:.6g}"

    print(f"curvatures in [{mu:g}, {L:g}], condition number {L / mu:g}")
    print(
        f"momentum: alpha* = {alpha:.6g}, beta* = {beta:.6g}, rate {show(rate, gaps[0])}, "
        f"{words(steps[0])}"
    )
    print(
        f"GD:       alpha* = {gd_alpha:.6g},            rate {show(gd_rate, gaps[1])}, "
        f"{words(steps[1])}"
    )
    return 0


def check_paths(parser, **paths) -> None:
    """Every output path of a command, checked before any compute: exit 2 naming the flag."""
    for flag, path in paths.items():
        if path is None:
            continue
        try:
            name = "--" + flag.split("_")[0]
            (check_store_path if flag == "out" else check_output_file)(path, name)
        except ValueError as e:
            parser.error(str(e))


def _check_distributed(args, parser) -> None:
    """The flags of a distributed sweep, before JAX starts."""
    given = [args.coordinator, args.num_processes, args.process_id, args.init_timeout]
    if any(v is not None for v in given) and not args.distributed:
        parser.error(
            "--coordinator, --num-processes, --process-id and --init-timeout need --distributed"
        )
    if not args.distributed:
        return
    if any(v is None for v in given[:3]) and any(v is not None for v in given[:3]):
        parser.error("give all of --coordinator, --num-processes and --process-id, or none")
    if args.process_id is not None and args.process_id >= args.num_processes:
        parser.error(f"--process-id must be < --num-processes, got {args.process_id}")
    if args.coordinator is not None:
        try:
            check_coordinator(args.coordinator)
        except ValueError as e:
            parser.error(str(e))


def _distributed(args, parser) -> None:
    import jax

    if not args.distributed:
        return
    try:
        if args.coordinator is None:  # a cluster JAX detects by itself (SLURM, TPU pods)
            jax.distributed.initialize()
        else:
            timeout = args.init_timeout or cluster.INIT_TIMEOUT
            cluster.join(args.coordinator, args.num_processes, args.process_id, timeout)
    except (ValueError, RuntimeError) as e:
        if args.coordinator is None:
            parser.error(
                f"--distributed found no cluster to join ({e}); pass --coordinator HOST:PORT "
                "--num-processes N --process-id I"
            )
        raise


def _plan(args) -> str:
    """What the sweep is about to do, said before it starts: runs, steps, results' size."""
    n_seed = args.seeds
    runs = n_points(args) * n_seed
    steps = args.epochs * -(-1000 // args.batch_size)
    kept = 1 + args.epochs + (-(-steps // args.record_every) if args.record_every else 0)
    size = runs * (4 * kept + 1)  # float32 losses and a status byte a run
    where = f"on disk in {args.out}" if args.out else "in memory"
    shown = f"{size / 2**30:.2f} GiB" if size >= 2**28 else f"{size / 2**20:.1f} MiB"
    if args.sample is not None:
        what = f"{_count(args.sample[1], args.sample[0] + ' trial')} x {_count(n_seed, 'seed')}"
    else:
        what = (
            f"{_count(len(args.betas), 'beta')} x {_count(len(args.lrs), 'learning rate')} x "
            f"{_count(n_seed, 'seed')}"
        )
    if args.halving is not None:
        return (
            f"sweep: successive halving (eta {args.halving}) over {runs:,} runs ({what}), "
            f"from {args.min_epochs or 1} to {args.epochs} epochs; results {where}"
        )
    return f"sweep: {runs:,} runs ({what}) of {steps} steps; results {shown} {where}"


def sweep(args, parser) -> int:
    if args.plot is not None:  # the file really written is the one checked
        from pathlib import Path

        suffix = Path(args.plot).suffix
        if suffix not in ("", ".png"):
            parser.error(f"--plot writes a PNG: give FILE.png, got {args.plot!r}")
        args.plot = args.plot + ".png" if not suffix else args.plot
    halving = getattr(args, "halving", None) is not None  # its --out: a folder of rung stores
    check_paths(parser, out=None if halving else args.out, csv=args.csv, plot=args.plot)

    cli_search.check_search(args, parser)  # the flags, by the names typed, before JAX starts
    _check_distributed(args, parser)
    print(_plan(args), flush=True)
    setup_devices(args.devices)
    import jax

    _distributed(args, parser)

    try:
        table = cli_search.trials(args)
        if table is not None:
            res = cli_search.run(args, table)
        else:
            res = chapter.sweep(
                args.betas,
                args.lrs,
                seeds=range(args.seeds),
                epochs=args.epochs,
                batch_size=args.batch_size,
                nesterov=args.nesterov,
                chunk_size=args.chunk_size,
                progress=not args.no_progress,
                out=args.out,
                record_every=args.record_every,
            )
    except (ValueError, RuntimeError, OSError, TypeError) as e:
        if jax.process_count() > 1:  # never the interpreter's exit: it waits for the dead
            why = "a partner process stopped" if partner_failed(e) else str(e).splitlines()[0]
            kept = f"; the store {args.out} keeps every finished block" if args.out else ""
            stop(
                f"jaxmom sweep: process {jax.process_index()}: {why}{kept}: start every "
                "process again with the same command to resume"
            )
        if isinstance(e, OSError):  # a full disk, a permission: one line, the store resumes
            return fail(parser, e.strerror or str(e))
        parser.error(str(e) or f"{type(e).__name__} (not enough memory?)")
    except KeyboardInterrupt:
        where = (
            f"; the store {args.out} keeps every finished block: the same command resumes it"
            if args.out
            else ""
        )
        print(f"\ninterrupted{where}", file=sys.stderr)
        return 130
    if jax.process_index() == 0:
        try:  # reading the results: a damaged status or chunk is named in one line
            print(res.summary())
            print(
                f"{len(jax.devices())} {jax.devices()[0].platform} device(s), "
                f"{res.metadata['wall_seconds']:.2f} s"
            )
            for path, write in ((args.out, None), (args.csv, res.to_csv), (args.plot, res.plot)):
                if path:
                    print(f"wrote {path if write is None else write(path)}")
        except (ValueError, OSError) as e:
            return fail(parser, str(e))
    return 0


def verify(args, parser) -> int:
    """Reads every chunk of the store's finished blocks (of every rung's store, for a halving
    folder): exit 0 if all are whole, 1 if some are damaged (0 again once ``--repair``, under
    each store's lock, has marked them for the same command to run again)."""
    path = Path(args.path)
    if not path.exists():
        return fail(parser, f"{args.path!r} does not exist")
    stores = rung_stores(path)
    if stores == []:
        print(f"{path}: a halving sweep's folder with no rung stored yet")
        return 0
    status = 0
    for store in stores or [path]:
        try:
            status = max(status, _verify_store(store, args.repair))
        except (ValueError, RuntimeError, OSError) as e:
            return fail(parser, str(e))
    return status


def _verify_store(path: Path, repair: bool) -> int:
    try:
        attrs = json.loads((path / "zarr.json").read_text())["attributes"]
        fmt = attrs["format"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{str(path)!r} is not a jaxmom sweep store") from None
    if fmt not in READABLE:
        raise ValueError(f"{str(path)!r} is not a jaxmom sweep store (format {fmt!r})")
    check_attrs(path, attrs)
    bad = damaged_blocks(path, attrs, read=True)
    if not bad:
        print(f"{path}: every finished block is whole")
        return 0
    blocks = ", ".join(f"({q}, {g})" for q, g in bad[:20]) + (" ..." if len(bad) > 20 else "")
    print(f"{path}: {len(bad)} damaged block(s) (point block, seed block): {blocks}")
    if repair:
        lock = Lock(path)  # not while a sweep writes it
        try:
            unmark(path, bad)
        finally:
            lock.release()
        print("marked not done: the same sweep command runs them again")
        return 0
    print("`jaxmom verify --repair` marks them, and the same sweep command runs them again")
    return 1
