"""``python -m lmcoverage``."""

import sys

from lmcoverage.cli import main

sys.exit(main())
