"""Entry point for ``python -m drsandbox``: hands over to the CLI."""

import sys

from .cli import main

sys.exit(main())
