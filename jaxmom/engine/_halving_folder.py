"""A search's folder: a mark file says which search it holds. A halving sweep's
(``halving.json``) holds a store per rung (``b{bracket}_r{rung}.zarr``) that checks its own
identity on resume; a search on the lane pool's (``search.json``) its checkpoints."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from jaxmom.common import check_parent

#: The file that marks a folder as a halving sweep's, with what defines the sweep.
MARK = "halving.json"
PARTIAL = f".{MARK}.partial"  # written first, then renamed into place
RUNG = re.compile(r"b[0-9]+_r[0-9]+\.zarr")  # a rung's store


def check_halving_path(path, name: str = "out") -> Path:
    """``path`` as a ``Path`` if a halving sweep can be started or resumed there: a new folder
    in a writable one, or a folder a halving sweep wrote (``halving.json``)."""

    path = Path(path)
    if not path.exists():
        check_parent(path, name)
    elif not path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a file, not a halving sweep's folder")
    elif not (path / MARK).is_file():
        # a kill before halving.json was renamed into place leaves only its temporary file; a
        # mark deleted (damaged) leaves the rungs' stores, each of which checks its identity
        foreign = [p for p in path.iterdir() if p.name != PARTIAL and not RUNG.fullmatch(p.name)]
        if foreign:
            raise ValueError(f"{name} {str(path)!r} exists and is not a halving sweep's folder")
    return path


def rung_stores(path: Path) -> list[Path] | None:
    """The rungs' stores in ``path`` if it is a halving sweep's folder (its mark, or rung stores
    without one and no store of its own), else ``None``."""
    if not path.is_dir() or (path / "zarr.json").exists():
        return None
    stores = sorted(p for p in path.iterdir() if RUNG.fullmatch(p.name))
    return stores if stores or (path / MARK).is_file() else None


def claim(path: Path, record: dict, mark_name: str = MARK, what: str = "a halving sweep") -> None:
    """Writes the mark (``halving.json``), or checks that the one there holds the same
    search (``what`` names it in errors)."""

    mark = path / mark_name
    if mark.is_file():
        try:
            held = json.loads(mark.read_text())
            if not isinstance(held, dict):
                raise ValueError(f"a JSON {type(held).__name__}, not an object")
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(
                f"{str(mark)!r} is damaged ({e}): delete that file and run the same call; what "
                f"the folder holds is kept, and checked on resume to be {what}'s"
            ) from None
        differ = [k for k in record if held.get(k) != json.loads(json.dumps(record[k]))]
        if differ:
            raise ValueError(
                f"{str(path)!r} holds {what} with other settings (differing: "
                f"{', '.join(differ)}); use another path, or delete it to start over"
            )
        return
    path.mkdir(exist_ok=True)
    tmp = path / f".{mark_name}.partial"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, mark)
