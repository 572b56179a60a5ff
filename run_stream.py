#!/usr/bin/env python3
"""LipForensics Live from a checkout: the same commands as the installed ``lipforensics-live``."""

import sys

from commands.cli import main

if __name__ == "__main__":
    sys.exit(main())
