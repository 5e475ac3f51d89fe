"""The ``jaxmom`` command: ``sweep``, ``verify``, ``bench`` and ``theory``. Never imported by
``import jaxmom``; ``jaxmom.cli.setup_devices`` is public (experiments call it first)."""

from jaxmom.cli._commands import setup_devices as setup_devices
from jaxmom.cli._main import main as main

__all__ = ("main", "setup_devices")
