"""PostgreSQL: a throwaway cluster per test session and a fresh empty database per test."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ._process import HOST, ServiceProcess, free_port, require_binary, run_checked

SERVICE = "postgresql"
_OS_USER = "postgres"  # initdb and postgres refuse to run as root


@dataclass
class PostgresServer:
    """A running PostgreSQL cluster (trust auth, superuser ``postgres``, no password)."""

    host: str
    port: int
    user: str
    data_dir: Path
    #: SQLAlchemy URL of the ``postgres`` maintenance database.
    admin_url: str
    bin_dir: Path = field(default=Path(), repr=False)

    def url(self, dbname: str, driver: str = "psycopg") -> str:
        """SQLAlchemy URL of ``dbname`` (``driver`` e.g. ``psycopg`` or ``asyncpg``)."""
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{dbname}"

    def libpq_url(self, dbname: str = "postgres") -> str:
        """Plain libpq URI, for ``psycopg.connect`` or ``psql``."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run one SQL command through ``psql`` (no Python driver needed) and return its output."""
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.libpq_url(dbname),
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {sql}\n{result.stderr}")
        return result.stdout

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database even if a leaked connection pool still holds sessions on it."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def find_pg_bin_dir() -> Path | None:
    """Newest installed server's bin dir (Debian puts them in /usr/lib/postgresql/<major>/bin)."""
    candidates = []
    for postgres in Path("/usr/lib/postgresql").glob("*/bin/postgres"):
        m = re.fullmatch(r"(\d+)(?:\.(\d+))?", postgres.parent.parent.name)
        if m:
            candidates.append(((int(m[1]), int(m[2] or 0)), postgres.parent))
    if candidates:
        return max(candidates)[1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


#: Server settings: loopback TCP only (no Unix socket), and no durability, which tests never need.
_SETTINGS = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "logging_collector": "off",
}


def _postmaster_ready(data_dir: Path) -> bool:
    """postmaster.pid's 8th line becomes ``ready`` once connections are accepted."""
    lines = (data_dir / "postmaster.pid").read_text().splitlines()
    return len(lines) >= 8 and lines[7].strip() == "ready"


@pytest.fixture(scope="session")
def postgresql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """Start a PostgreSQL cluster on 127.0.0.1 (fsync off: durability is worthless in tests)."""
    bin_dir = find_pg_bin_dir()
    initdb = require_binary(SERVICE, str(bin_dir / "initdb") if bin_dir else "initdb", "postgresql")
    bin_dir = Path(initdb).parent
    as_root = os.geteuid() == 0
    logs = tmp_path_factory.mktemp("postgresql")
    log = logs / "postgresql.log"
    # pytest's base temp dir (/tmp/pytest-of-root) is mode 0700, so the postgres user could not
    # reach a cluster inside it: the cluster gets its own dir, owned by postgres and removed below.
    base = Path(tempfile.mkdtemp(prefix="cc-pg-"))
    data_dir = base / "data"
    proc: ServiceProcess | None = None
    try:
        if as_root:
            shutil.chown(base, _OS_USER, _OS_USER)
            init_cmd = ["runuser", "-u", _OS_USER, "--", initdb]
        else:
            init_cmd = [initdb]
        run_checked(
            SERVICE,
            [*init_cmd, "-D", data_dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
            log,
            cwd=base,
        )
        port = free_port()
        argv: list[object] = [bin_dir / "postgres", "-D", data_dir, "-p", port]
        for name, value in _SETTINGS.items():
            argv += ["-c", f"{name}={value}"]
        proc = ServiceProcess(
            SERVICE,
            argv,
            log,
            cwd=base,
            stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM would wait for leaked sessions
            user=_OS_USER if as_root else None,
        ).start()
        proc.wait_ready(lambda: _postmaster_ready(data_dir), timeout=30)
        server = PostgresServer(
            host=HOST,
            port=port,
            user="postgres",
            data_dir=data_dir,
            admin_url=f"postgresql+psycopg://postgres@{HOST}:{port}/postgres",
            bin_dir=bin_dir,
        )
        yield server
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgresql_url(postgresql_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL (psycopg driver) of a fresh, empty database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = postgresql_server.create_database(name)
    try:
        yield url
    finally:
        postgresql_server.drop_database(name)
