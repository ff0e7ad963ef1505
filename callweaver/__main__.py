"""``python -m callweaver`` runs the command line."""

import sys

from callweaver.cli import main

sys.exit(main())
