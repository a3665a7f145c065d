"""``python -m jellyroll.cli``: the command line."""

from jellyroll.cli import app

app()
