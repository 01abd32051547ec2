"""``python -m simulations.cli.main``: the recarena command."""

import sys

from simulations.cli.main import main

sys.exit(main())
