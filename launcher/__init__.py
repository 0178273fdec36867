"""The composition root: the ``tsunagu`` command line, the local runner and the demo loader.

It sits above ``services/`` and ``gateway/`` and may import all of them; nothing imports it (the
import-linter contracts in pyproject.toml keep it so). Each service offers its own typer sub-app
(``services/<name>/cli.py``), which ``launcher.cli`` mounts.
"""
