"""``python -m jaxmom``: the ``jaxmom`` command."""

import sys

from jaxmom.cli import main

sys.exit(main())
