"""Database commands: init-db, migrate-db, revert-db, optimize-db, users, jwt."""

COMMANDS: list = []
