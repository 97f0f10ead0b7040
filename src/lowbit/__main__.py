"""``python -m lowbit`` runs the command line (also under ``torchrun -m lowbit``)."""

import sys

from .cli import main

sys.exit(main())
