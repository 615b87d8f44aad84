"""``python -m pyro_mm`` runs the ``pyro-mm`` command."""

import sys

from .cli import main

sys.exit(main())
