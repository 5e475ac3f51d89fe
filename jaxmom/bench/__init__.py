"""``jaxmom bench``: jaxmom beside what users would pick instead, timed in one run, with the
device's own matmul peak. One module a task (``chapter``, ``digits``, ``search``, ``models``),
each with ``METHODS``, ``OPTIONAL`` (method: the package it needs), ``run``, ``table``,
``plot`` and ``write``. Never imported by ``import jaxmom``."""

from jaxmom.bench import _chapter as chapter
from jaxmom.bench import _digits as digits
from jaxmom.bench import _models as models
from jaxmom.bench import _search as search
from jaxmom.bench._peak import Peak as Peak
from jaxmom.bench._peak import cpu_theoretical as cpu_theoretical
from jaxmom.bench._report import (
    INSTALL as INSTALL,
)
from jaxmom.bench._report import (
    check_methods as check_methods,
)
from jaxmom.bench._report import (
    device_info as device_info,
)
from jaxmom.bench._report import (
    missing as missing,
)
from jaxmom.bench._report import (
    peer_versions as peer_versions,
)
from jaxmom.bench._report import (
    versions as versions,
)

#: The bench of each ``--task``.
TASKS = {"chapter": chapter, "digits": digits, "search": search, "models": models}
