"""Archive commands: import-job and the `archive` group (archive-manager parity)."""

COMMANDS: list = []
