"""``python -m cfgcore.setup``: scaffold a config directory (the seed's setup command).

The implementation lives in :mod:`cfgcore.cli.scaffold`.
"""

import sys

from cfgcore.cli.scaffold import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
