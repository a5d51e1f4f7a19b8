"""``python -m troy.agent --coordination URL --pilot ID``."""

import sys

from troy.agent.agent import main

sys.exit(main())
