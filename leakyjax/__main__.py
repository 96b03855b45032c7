"""`python -m leakyjax`: the `leakyjax` console script."""

import sys

from leakyjax._src.cli import main

if __name__ == "__main__":
    sys.exit(main())
