"""`python -m cc_core` = the `clustercockpit` command."""

from cc_core.cli import main

main()
