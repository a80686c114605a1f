"""``python -m walsspark``: the ``walsspark`` console script."""

from walsspark.cli import run

run()
