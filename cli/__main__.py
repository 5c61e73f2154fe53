"""``python -m cli``: the ``tdn`` command."""
import sys

from cli.main import main

sys.exit(main())
