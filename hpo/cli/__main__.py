"""``python -m hpo.cli COMMAND ...``: the ``hpo`` command (what ``hpo run`` starts its workers with)."""

import sys

from hpo.cli import main

sys.exit(main())
