"""`python -m sparsenets` (and `torchrun -m sparsenets`) runs the command line."""

import sys

from sparsenets.cli import main

sys.exit(main())
