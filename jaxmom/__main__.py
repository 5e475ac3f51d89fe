"""``python -m jaxmom``: the ``jaxmom`` command."""

import sys

from jaxmom.cli import main

if __name__ == "__main__":
    sys.exit(main())
