"""``jaxmom sweep --sample`` and ``--halving``: the flags of a search as a table of trials.

    jaxmom sweep --sample sobol:1024 --betas 0:0.99 --lrs log:1e-3:3 --seeds 2
    jaxmom sweep --sample random:729 --betas 0:0.99 --lrs log:1e-3:3 --halving 3 --min-epochs 1

With ``--sample`` each of ``--betas`` and ``--lrs`` is a range (``LOW:HIGH``, or
``log:LOW:HIGH``), or a list the trials choose from; without it they are the grid's axes, and
``--halving`` runs successive halving over every point of the grid.
"""

from __future__ import annotations

from jaxmom import chapter, engine
from jaxmom.chapter import SearchPlan, as_axis
from jaxmom.cli._args import Range
from jaxmom.common import check_beta, check_learning_rate
from jaxmom.engine import check_halving_path, check_halving_size, rung_steps


def check_search(args, parser) -> None:
    """The search flags, by the names the user typed, before JAX starts."""
    ranges = [f for f, v in (("--betas", args.betas), ("--lrs", args.lrs)) if isinstance(v, Range)]
    if ranges and args.sample is None:
        parser.error(
            f"{ranges[0]} is a range (LOW:HIGH): give --sample METHOD:N to draw trials from it, "
            "or a grid axis START:STOP:NUM"
        )
    if args.min_epochs is not None and args.halving is None:
        parser.error("--min-epochs needs --halving ETA")
    if args.halving is not None:
        if args.out is not None:
            try:
                check_halving_path(args.out, "--out")
            except ValueError as e:
                parser.error(str(e))
        min_epochs = args.min_epochs or 1
        if min_epochs > args.epochs:
            parser.error(f"--min-epochs {min_epochs} must be <= --epochs {args.epochs}")
        if args.record_every != 1:
            parser.error(
                "--record-every does not apply to --halving: a halving sweep records "
                "each trial's metrics at every rung, not its step losses"
            )
        if args.sample is not None:
            rungs = len(rung_steps(min_epochs, args.epochs, args.halving))
            try:
                check_halving_size(args.sample[1], args.seeds, rungs)
            except ValueError as e:
                parser.error(str(e))
    for flag, values, check in (
        ("--betas", args.betas, check_beta),
        ("--lrs", args.lrs, check_learning_rate),
    ):
        try:
            as_axis([values.low, values.high] if isinstance(values, Range) else values, flag, check)
        except ValueError as e:
            parser.error(str(e))
        if isinstance(values, Range) and not values.low < values.high:
            parser.error(f"{flag} range must have LOW < HIGH, got {values.low}:{values.high}")
        if isinstance(values, Range) and values.log and values.low <= 0:
            parser.error(f"{flag} log:LOW:HIGH needs LOW > 0, got {values.low}")


def n_points(args) -> int:
    if args.sample is not None:
        return args.sample[1]
    return len(args.betas) * len(args.lrs)


def trials(args) -> dict | None:
    """The table of trials the flags ask for (``None``: a plain grid sweep)."""
    if args.sample is None:
        grid = {"beta": args.betas, "learning_rate": args.lrs}
        return engine.product(grid) if args.halving is not None else None

    def space(values):
        if isinstance(values, Range):
            return (engine.LogUniform if values.log else engine.Uniform)(values.low, values.high)
        return engine.Choice(values)

    method, n = args.sample
    return engine.sample(
        {"beta": space(args.betas), "learning_rate": space(args.lrs)}, n, method=method, seed=0
    )


def run(args, table):
    """The search: :func:`jaxmom.chapter.search` with the flags' plan."""
    plan = SearchPlan(
        epochs=args.epochs,
        batch_size=args.batch_size,
        nesterov=args.nesterov,
        record_every=args.record_every,
        chunk_size=args.chunk_size,
        out=args.out,
        progress=not args.no_progress,
        eta=args.halving,
        min_epochs=args.min_epochs or 1,
    )
    return chapter.search(table, range(args.seeds), plan)
