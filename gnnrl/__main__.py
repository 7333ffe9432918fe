"""``python -m gnnrl ...``: the same command line as the ``gnnrl`` script."""

import sys

from gnnrl.cli import main

if __name__ == "__main__":
    sys.exit(main())
