"""Whether a store's finished blocks are whole: their chunk files present, of their size, and
(from format ``jaxmom.sweep/3``) passing their crc32c checksums.

A block is *done* when its ``status`` chunk exists. Every chunk of a done block must then be
there: a missing or truncated one (a damaged disk, a stray ``rm``) is found by a listing and a
``stat`` per file, which a resume does, recomputing those blocks; a chunk of the right size
holding other bytes fails its checksum when read, which :func:`damaged_blocks` with
``read=True`` (``jaxmom verify``) does for the whole store. Entries that are not the store's (a
``.DS_Store``, an editor's backup) are ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxmom.results._format import CHECKSUMMED, array_name
from jaxmom.results._points import count_points


def done_blocks(path: Path, shape: tuple[int, int], block: tuple[int, int]) -> np.ndarray:
    """``[point blocks, seed blocks]``: True where the block's status chunk exists (one listing
    of a folder per point block, whatever the number of blocks)."""
    (n_points, n_seeds), (m, k) = shape, block
    done = np.zeros((-(-n_points // m), -(-n_seeds // k)), bool)
    root = path / "status" / "c"
    for q in _listdir(root):
        if q.isdigit() and int(q) < done.shape[0] and (root / q).is_dir():
            for g in _listdir(root / q):
                if g.isdigit() and int(g) < done.shape[1] and (root / q / g).is_file():
                    done[int(q), int(g)] = True
    return done


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _arrays(path: Path, attrs: dict) -> dict[str, tuple[str, Path, int, int]]:
    """``{output: (its array's name, its folder, the bytes of one chunk file, its dims beyond
    (point, seed))}`` for every output and ``status``, from the arrays' metadata (read once)."""

    fmt, out = attrs["format"], {}
    for name in [*attrs["outputs"], "status"]:
        array = name if name == "status" else array_name(name, fmt)
        folder = path / array
        try:
            meta = json.loads((folder / "zarr.json").read_text())
        except (OSError, ValueError) as e:
            raise ValueError(
                f"the store {str(path)!r}: the metadata of its array {folder.name!r} is missing "
                f"or damaged ({e.__class__.__name__}); delete the store to start over"
            ) from None
        size = int(np.prod(meta["chunk_grid"]["configuration"]["chunk_shape"]))
        size *= np.dtype(meta["data_type"]).itemsize
        size += 4 if fmt == CHECKSUMMED else 0  # crc32c: 4 bytes
        out[name] = (array, folder, size, len(meta["shape"]) - 2)
    return out


def _chunk(folder: Path, q: int | str, g: int | str, extra: int) -> Path:
    """The file of block ``(q, g)``'s chunk in an array with ``extra`` dims beyond (point, seed)
    (each chunk spans them whole: its index there is 0)."""
    return folder.joinpath("c", str(q), str(g), *["0"] * extra)


def _reads(data, q: int, g: int, block) -> bool:
    """Whether block ``(q, g)`` of the zarr array ``data`` reads: its checksum passes and its
    bytes decode."""
    m, k = block
    try:
        data[q * m : (q + 1) * m, g * k : (g + 1) * k]
    except ValueError:
        return False
    return True


def damaged_blocks(
    path: Path, attrs: dict, *, read: bool = False, read_status: bool = False
) -> list[tuple[int, int]]:
    """The done blocks ``(q, g)`` whose chunk files are missing or of the wrong size, and with
    ``read=True`` also those whose chunks fail their checksum (or cannot be decoded);
    ``read_status=True`` reads only the ``status`` chunks (a byte a run: what a resume reads,
    so a block whose status is garbage is run again rather than found after the sweep)."""
    shape, block = (count_points(attrs["axes"]), len(attrs["seeds"])), tuple(attrs["block"])
    done = np.argwhere(done_blocks(path, shape, block)).tolist()
    arrays = _arrays(path, attrs)
    bad = set()
    for q, g in done:
        for _, folder, size, extra in arrays.values():
            chunk = _chunk(folder, q, g, extra)
            if not chunk.is_file() or chunk.stat().st_size != size:
                bad.add((q, g))
                break
    if read or read_status:
        import zarr

        group = zarr.open_group(path, mode="r")
        names = [array for array, *_ in arrays.values()] if read else ["status"]
        data = [group[array] for array in names]
        bad |= {
            (q, g)
            for q, g in done
            if (q, g) not in bad and not all(_reads(d, q, g, block) for d in data)
        }
    return sorted(bad)


def stale_partials(path: Path) -> list[Path]:
    """The temporary files of writes a kill interrupted (zarr's ``*.partial``), found by one
    walk of the store that also raises a ``ValueError`` if anything inside but its lock is a
    symbolic link (an array's folder, its ``c/``, a block's folder or file): zarr would write
    through it, out of the store."""
    todo, stale = [path], []
    while todo:
        try:
            entries = list(os.scandir(todo.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_symlink() and Path(entry.path) != path / ".lock":
                raise ValueError(
                    f"{entry.path!r} inside the store is a symbolic link, which jaxmom never "
                    "writes through (it leads out of the store): replace it with what it points "
                    "to, or remove it and the same call runs its blocks again"
                )
            if entry.is_dir(follow_symlinks=False):
                todo.append(Path(entry.path))
            elif entry.name.endswith(".partial"):
                stale.append(Path(entry.path))
    return stale


def unmark(path: Path, blocks) -> None:
    """Marks ``blocks`` not done (their status chunk removed), so the sweep runs them again."""
    for q, g in blocks:
        (path / "status" / "c" / str(q) / str(g)).unlink(missing_ok=True)


def check_attrs(path: Path, attrs: dict) -> dict:
    """``attrs`` if the store's attributes have the shapes a sweep writes, else a
    ``ValueError`` naming the damaged one (a store edited by hand, a disk error)."""

    def bad(key: str):
        return ValueError(
            f"the store {str(path)!r} has a damaged attribute {key!r} ({attrs.get(key)!r}): "
            "it cannot be read or resumed; delete it to start over"
        )

    def ints(v, n=None) -> bool:
        ok = isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
        return ok and (n is None or len(v) == n)

    block = attrs.get("block")
    if not ints(block, 2) or min(block) < 1:  # type: ignore[arg-type]
        raise bad("block")
    axes, table = attrs.get("axes"), isinstance(attrs.get("trials"), dict)
    if not isinstance(axes, dict) or not all(
        (isinstance(v, list) and v) or (table and ints([v]) and v > 0) for v in axes.values()
    ):
        raise bad("axes")
    trials = attrs.get("trials")
    if trials is not None and not (
        isinstance(trials, dict) and isinstance(trials.get("columns"), dict)
    ):
        raise bad("trials")
    if not ints(attrs.get("seeds")) or not attrs["seeds"]:
        raise bad("seeds")
    outputs = attrs.get("outputs")
    if (
        not isinstance(outputs, dict)
        or not outputs
        or not all(
            isinstance(v, list) and len(v) == 2 and ints(v[0]) and isinstance(v[1], str)
            for v in outputs.values()
        )
    ):
        raise bad("outputs")
    return attrs


def open_array(group, name: str, path: Path):
    """``group[name]``, or a ``ValueError`` naming the array whose metadata is gone."""
    try:
        return group[name]
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(
            f"the store {str(path)!r} lacks its array {name!r}, or its metadata "
            f"({name}/zarr.json) is damaged ({e!r}): it cannot be read or resumed; delete it to "
            "start over"
        ) from None


def missing_chunks(path: Path, attrs: dict, output: str, array: str, points) -> None:
    """Raises a ``ValueError`` naming the block if a finished block among ``points`` (flat
    point indices just read) has no chunk file for ``output``: zarr reads a missing chunk as
    its fill value (NaN), which must not pass for a diverged run."""
    m = attrs["block"][0]
    folder = path / array
    extra = len(json.loads((folder / "zarr.json").read_text())["shape"]) - 2
    for q in np.unique(np.asarray(points) // m).tolist():
        status = path / "status" / "c" / str(q)
        for g in _listdir(status):
            if not g.isdigit() or not (status / g).is_file():
                continue
            if not _chunk(folder, q, g, extra).is_file():
                raise ValueError(
                    f"output {output!r} of the store {str(path)!r}: the chunk of finished block "
                    f"({q}, {g}) is missing; `jaxmom verify --repair` marks it, and the same "
                    "sweep runs it again"
                )


def damaged_block(path: Path, attrs: dict, array: str, points) -> tuple[int, int] | None:
    """The first block ``(q, g)`` among ``points`` whose chunk of ``array`` fails to read (its
    checksum, or bytes that do not decode); ``None`` if every one reads."""
    import zarr

    block = tuple(attrs["block"])
    data: Any = zarr.open_group(path, mode="r")[array]
    for q in np.unique(np.asarray(points) // block[0]).tolist():
        for g in range(-(-data.shape[1] // block[1])):
            if not _reads(data, q, g, block):
                return q, g
    return None
