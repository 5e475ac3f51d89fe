"""Where a sweep's results live: the checksummed zarr store (format, integrity, lock), the
:class:`SweepResult` users hold, and its views (xarray, pandas, CSV, plots)."""

from jaxmom.results._format import READABLE as READABLE
from jaxmom.results._grid_array import GridArray as GridArray
from jaxmom.results._integrity import check_attrs as check_attrs
from jaxmom.results._integrity import damaged_blocks as damaged_blocks
from jaxmom.results._integrity import unmark as unmark
from jaxmom.results._lock import Lock as Lock
from jaxmom.results._metric import metric_mode as metric_mode
from jaxmom.results._points import Points as Points
from jaxmom.results._result import SweepResult as SweepResult
from jaxmom.results._store import CANNOT_WRITE as CANNOT_WRITE
from jaxmom.results._store import Store as Store
from jaxmom.results._store import check_store_path as check_store_path

__all__ = ("GridArray", "SweepResult")
