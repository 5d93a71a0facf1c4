"""``python -m lmcoverage``."""

import sys

from lmcoverage.cli import main

if __name__ == "__main__":  # not when a spawned worker (a module verifier) re-imports it
    sys.exit(main())
