"""`python -m promotion_gate.cli`: the same as the `promotion-gate` command."""

import sys

from promotion_gate.cli.main import entry

if __name__ == "__main__":
    sys.exit(entry())
