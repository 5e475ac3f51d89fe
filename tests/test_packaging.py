"""What a user installs: honest floors (the CI floor environment runs at exactly these),
the typing marker, and every Python snippet of the README run as written."""

import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra, deps in project["optional-dependencies"].items():
        if not extra.startswith("cuda"):
            specs += deps
    floors = {}
    for spec in specs:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(>=|==)\s*([0-9.]+)", spec)
        assert m, f"{spec!r} in pyproject.toml has no lowest version"
        floors[m[1].lower()] = m[3]
    return floors


def test_every_floor_is_what_the_floor_environment_installs():
    pins = {}
    for line in (ROOT / ".ci" / "floor.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    floors = _floors()
    pins.pop("jaxlib")  # jax's own pin, listed for clarity
    assert pins == floors
    assert pins["jax"] == "0.8.0"  # flax 0.12.0 needs jax >= 0.7.1; jax 0.7 lacks enable_x64


def test_typing_marker_ships():
    assert resources.files("jaxmom").joinpath("py.typed").is_file()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["jaxmom"]


PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]


def _snippets(page: str) -> list[str]:
    text = (ROOT / page).read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


SNIPPETS = [(page, i) for page in PAGES for i in range(len(_snippets(page)))]


def test_readme_and_docs_have_snippets():
    assert _snippets("README.md") and len(SNIPPETS) >= 6


@pytest.mark.parametrize("page, index", SNIPPETS)
def test_snippet_runs_as_written(page, index, tmp_path):
    """Each Python block of the README and the docs in a fresh interpreter (as a reader would
    paste it), in an empty folder."""
    code = _snippets(page)[index]
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{page} snippet {index}:\n{code}\n{proc.stderr[-3000:]}"


def test_version_is_the_packages():
    import jaxmom

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert jaxmom.__version__ == project["version"]


def test_the_wheel_carries_the_license(tmp_path):
    """The built wheel (from a copy of what it is built from) holds LICENSE, Apache-2.0."""
    import shutil
    import zipfile

    src = tmp_path / "src"
    shutil.copytree(ROOT / "jaxmom", src / "jaxmom", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("jaxmom-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (license_file,) = [n for n in names if n.endswith("licenses/LICENSE")]
        assert "Apache License" in zf.read(license_file).decode()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta and "License-File: LICENSE" in meta


def test_jaxmom_imports_without_fcntl(tmp_path):
    """Where fcntl does not exist (Windows) jaxmom imports; only writing a store says why not."""
    code = (
        "import sys; sys.modules['fcntl'] = None\n"
        "import jaxmom, pathlib\n"
        "from jaxmom.results import Lock\n"
        "try:\n"
        "    Lock(pathlib.Path('.'))\n"
        "except RuntimeError as e:\n"
        "    print(e)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "needs POSIX file locks (fcntl)" in proc.stdout and "without out=" in proc.stdout
    assert not (tmp_path / ".lock").exists()
