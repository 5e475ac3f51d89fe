"""``jaxmom bench``, once :mod:`jaxmom.cli` has parsed its flags: the chapter's task, digits
or a search, its peers checked before anything runs, one line for a fault."""

from __future__ import annotations

from jaxmom.bench import INSTALL, TASKS, check_methods, missing
from jaxmom.cli._commands import check_paths, fail, setup_devices


def bench(args, parser) -> int:
    bench = TASKS[args.task]
    chosen = args.methods is not None
    args.methods = list(bench.METHODS) if args.methods is None else args.methods
    try:
        check_methods(args.methods, bench.METHODS)
    except ValueError as e:
        parser.error(str(e))
    if not args.methods:
        parser.error("--methods is empty: give a comma list from " + ",".join(bench.METHODS))
    if args.task != "chapter" and missing(["task"], {"task": bench.TASK_REQUIRES}):
        return fail(
            parser,
            f"--task {args.task} needs scikit-learn, which is not installed: {INSTALL['sklearn']}",
        )
    absent = missing(args.methods, bench.OPTIONAL)
    if absent and chosen:  # asked for by name: say so, rather than print an empty table
        method, package = next(iter(absent.items()))
        hint = INSTALL.get(package, f"pip install {package}")
        why = f"--methods {method} needs {package}, which is not installed: {hint}"
        return fail(parser, why)
    # the default methods: run.* skips what is not installed, says so and records it
    if args.out is not None and not args.out.endswith(".json"):
        parser.error(f"--out must name a .json file, got {args.out!r}")
    if args.out is not None:
        from pathlib import Path

        if Path(args.out).exists() and not args.overwrite:
            parser.error(f"--out {args.out} exists: give a new file, or --overwrite to replace it")

        check_paths(parser, out_json=args.out, out_png=str(Path(args.out).with_suffix(".png")))
    if args.task == "digits":
        try:
            for m in args.models or []:
                bench.grid(m)
        except ValueError as e:
            parser.error(f"--models with --task digits: {e}")
    if args.nets is not None and args.task != "models":
        parser.error(f"--nets is for --task models, not --task {args.task}")
    if args.task == "models":
        unknown = [n for n in args.nets or [] if n not in bench.MODELS]
        if unknown or args.nets == []:
            parser.error(f"--nets: choose from {','.join(bench.MODELS)}, got {args.nets}")
    setup_devices(args.devices)
    try:
        report = _run_bench(bench, args)
    except ValueError as e:
        return fail(parser, str(e))
    print(bench.table(report))
    if args.out:
        path = bench.write(report, args.out)
        png = bench.plot(report, path.with_suffix(".png"))
        print(f"wrote {path} and {png}")
    return 0


def _run_bench(bench, args) -> dict:
    """The report of the task the flags name, at their sizes (``--quick``: the smallest)."""
    if args.task == "search":
        return bench.run(args.methods, quick=args.quick, configs=args.models and args.models[0])
    if args.task == "models":
        nets = args.nets or (["mlp", "cnn"] if args.quick else list(bench.MODELS))
        sizes = args.models or ([1, 4] if args.quick else list(bench.SIZES))
        return bench.run(args.methods, models=nets, sizes=sizes, steps=4 if args.quick else 32)
    if args.task == "digits":
        models = args.models or ([8] if args.quick else [256, 1024, 4096])
        repeats = args.repeats or (2 if args.quick else 3)
    else:
        models = args.models or ([1, 64] if args.quick else [1, 16, 256, 1024, 4096])
        repeats = args.repeats or (2 if args.quick else 5)
    return bench.run(models, args.methods, repeats=repeats)
