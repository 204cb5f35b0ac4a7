"""Entry point of `python -m hub_local`."""

import sys

from hub_local.cli import main

sys.exit(main())
