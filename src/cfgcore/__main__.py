import sys

from cfgcore.cli import main

sys.exit(main())
