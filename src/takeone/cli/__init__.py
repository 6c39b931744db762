"""The ``takeone`` command line (see :mod:`takeone.cli.main`)."""

from takeone.cli.main import main

__all__ = ["main"]
