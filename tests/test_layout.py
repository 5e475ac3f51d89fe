"""The package's layout: stores written by jaxmom 0.4 (before the move to subpackages) resume
with today's code, to the same bits."""

import ast
import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxmom

DATA = Path(__file__).parent / "data"
STORES = DATA / "stores_v0_4"


def _made_with_this_jax(store: Path) -> None:
    # The computation's fingerprint hashes the jaxpr's text, which JAX's printer may change
    # between releases; the fixtures were written with one JAX.
    made = json.loads((store / "zarr.json").read_text())["attributes"]["metadata"]["jax_version"]
    if made != jax.__version__:
        pytest.skip(f"the 0.4 stores were written with jax {made}, this is {jax.__version__}")


def _resume(tmp_path: Path, name: str, blocks, run):
    """Copies a 0.4 store, marks ``blocks`` not done (their status chunk removed, as a kill
    before their write leaves them), resumes it with ``run(out)`` and returns (before, after)."""
    _made_with_this_jax(STORES / name)
    out = tmp_path / name
    shutil.copytree(STORES / name, out)
    before = jaxmom.SweepResult.load(out)
    before = {k: np.asarray(v) for k, v in before.outputs.items()}
    for q, g in blocks:
        (out / "status" / "c" / str(q) / str(g)).unlink()
    after = run(out)
    for q, g in blocks:
        assert (out / "status" / "c" / str(q) / str(g)).is_file()
    return before, {k: np.asarray(v) for k, v in after.outputs.items()}


def test_a_chapter_store_of_0_4_resumes(tmp_path):
    import make_v04_stores as made

    before, after = _resume(
        tmp_path,
        "chapter.zarr",
        [(1, 0)],
        lambda out: jaxmom.sweep(**made.CHAPTER, out=out, progress=False, chunk_size=2),
    )
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_an_nnx_trial_store_of_0_4_resumes(tmp_path):
    import make_v04_stores as made

    task, data = made.nnx_setup()
    before, after = _resume(
        tmp_path,
        "nnx.zarr",
        [(1, 1), (0, 0)],
        lambda out: jaxmom.trial_sweep(
            task.train_fn(6),
            made.NNX_TRIALS,
            (0, 1),
            data=data,
            chunk_size=2,
            out=out,
            progress=False,
        ),
    )
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


# -- the layers -----------------------------------------------------------------------------

PACKAGE = Path(__file__).parent.parent / "jaxmom"
#: Which subpackages each layer may import (the top-level jaxmom/__init__ is "jaxmom").
ALLOWED = {
    "common": set(),
    "theory": {"common"},
    "optim": {"common"},
    "training": {"common"},
    "results": {"common"},
    "engine": {"common", "training", "results"},
    "chapter": {"common", "optim", "training", "engine", "results"},
    "bench": {"common", "optim", "training", "engine", "results", "chapter", "theory"},
    "cli": {"common", "optim", "training", "engine", "results", "chapter", "theory", "bench"},
    "jaxmom": {"common", "optim", "training", "engine", "results", "chapter", "theory"},
    "__main__": {"cli"},
}
#: What users of 0.4 imported from ``jaxmom``; each name must still be there.
API_0_4 = (
    "MLP BatchOrder Choice IntUniform LogUniform MomentumState NNXTask Net SweepResult Task "
    "TrainResult Uniform accuracy apply_mlp batch_order batch_window grid_sweep halving_sweep "
    "heavy_ball init_mlp load_digits make_dataset masked_mean momentum mse_loss "
    "mse_value_and_grad nnx_task nnx_train_fn optuna_sweep product sample seed_inputs "
    "sgd_momentum sweep theory train train_scan train_step trial_sweep"
).split()


def _modules() -> dict[str, Path]:
    """``{"jaxmom.engine._sweeps": path, "jaxmom.engine": .../__init__.py, ...}``."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(modules: dict[str, Path]):
    """``(importer, imported module, names, line)`` for every import of a jaxmom module,
    inside functions too; ``from pkg import submodule`` counts as an import of the submodule."""
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("jaxmom"):
                        yield name, a.name, [], node.lineno
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxmom"):
                subs = [a.name for a in node.names if f"{node.module}.{a.name}" in modules]
                for s in subs:
                    yield name, f"{node.module}.{s}", [], node.lineno
                rest = [a.name for a in node.names if a.name not in subs]
                if rest:
                    yield name, node.module, rest, node.lineno


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "jaxmom"


def test_the_layers_import_one_way_and_nothing_private_crosses_them():
    modules = _modules()
    wrong = []
    for importer, imported, names, line in _imports(modules):
        src, dst = _layer(importer), _layer(imported)
        where = f"{importer} line {line}: {imported}"
        if src != dst and dst != "jaxmom" and dst not in ALLOWED[src]:
            wrong.append(f"{where} ({src} may not import {dst})")
        private = any(p.startswith("_") for p in imported.split(".")[1:]) or any(
            n.startswith("_") and n != "__version__" for n in names
        )
        if src != dst and private:
            wrong.append(f"{where} {names} (private across layers)")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    modules = _modules()
    graph = {m: set() for m in modules}
    for importer, imported, _, _ in _imports(modules):
        if imported in modules and imported != importer:
            graph[importer].add(imported)
    # a package's modules import its __init__ only through Python's machinery, not as a cycle
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(n) :], n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_modules_stay_small():
    sizes = {
        p.relative_to(PACKAGE.parent): len(p.read_text().splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    assert max(sizes.values()) <= 350, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_import_jaxmom_loads_neither_bench_nor_cli_and_keeps_0_4_names():
    code = (
        "import sys, jaxmom\n"
        "print(sorted(m for m in sys.modules if m.startswith(('jaxmom.bench', 'jaxmom.cli'))))\n"
        f"print([n for n in {API_0_4!r} if not hasattr(jaxmom, n)])\n"
        "import jaxmom.cli, jaxmom.theory\n"
        "print(callable(jaxmom.cli.main), callable(jaxmom.cli.setup_devices))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:3] == ["[]", "[]", "True True"], out.stdout + out.stderr


def _public():
    """``(qualified name, object)`` of every name the API exports: ``jaxmom.__all__`` and each
    layer's ``__all__``."""
    import importlib

    seen = {}
    for mod in (
        "jaxmom",
        *(f"jaxmom.{s}" for s in ("optim", "training", "engine", "results", "chapter", "cli")),
    ):
        m = importlib.import_module(mod)
        for name in m.__all__:
            obj = getattr(m, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and id(obj) not in seen:
                seen[id(obj)] = (f"{mod}.{name}", obj)
    return list(seen.values())


def test_every_public_function_and_class_says_its_args_and_returns():
    missing = []
    for name, obj in _public():
        doc = inspect.getdoc(obj) or ""
        if inspect.isclass(obj) and issubclass(obj, Exception):
            need = ()
        elif inspect.isclass(obj):
            need = ("Args:",) if "Attributes:" not in doc else ()
        else:
            need = ("Args:", "Returns:")
        missing += [f"{name}: {s}" for s in need if s not in doc]
        if not doc:
            missing.append(f"{name}: no docstring")
    assert not missing, "\n".join(missing)
