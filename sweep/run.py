"""`python -m sweep.run`: the study's command line (see `sweep.ui.cli`)."""

import sys

from sweep.ui.cli import main

if __name__ == "__main__":
    sys.exit(main())
