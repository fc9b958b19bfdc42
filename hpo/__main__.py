"""``python -m hpo COMMAND ...``: the ``hpo`` command."""

import sys

from hpo.cli import main

sys.exit(main())
