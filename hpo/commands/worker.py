"""Moved: ``python -m hpo.commands.worker`` is now ``python -m hpo.cli worker`` (or ``hpo worker``).

Scripts that start workers the old way get one line saying so and exit status 2.
"""

import sys

if __name__ == "__main__":
    print("python -m hpo.commands.worker has moved: use `hpo worker ...` or `python -m hpo.cli worker ...` "
          "(same arguments)", file=sys.stderr)
    sys.exit(2)
