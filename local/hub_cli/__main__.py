"""`python -m hub_cli`: the same as the installed `hub` command."""

from hub_cli.app import run

run()
