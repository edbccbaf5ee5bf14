"""``python -m textnorm`` (and ``accelerate launch -m textnorm``) runs the CLI."""

import sys

from textnorm.cli import main

sys.exit(main())
