"""``python -m edge`` is ``gridtokenx-edge``."""

import sys

from edge.cli import main

sys.exit(main())
