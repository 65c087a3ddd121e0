"""``python -m convcost.cli``: the command line."""

import sys

from convcost.cli import main

sys.exit(main())
