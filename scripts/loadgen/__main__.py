"""`python -m scripts.loadgen`, as `python scripts/load.py`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
