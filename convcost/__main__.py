"""``python -m convcost``: the command line, as the ``convcost`` script runs it."""

import sys

from convcost.cli import main

sys.exit(main())
