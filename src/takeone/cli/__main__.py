"""``python -m takeone.cli``: the same as the ``takeone`` command."""

import sys

from takeone.cli.main import main

sys.exit(main())
