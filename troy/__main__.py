"""``python -m troy``: the troy command line."""

import sys

from troy.cli import main

sys.exit(main())
