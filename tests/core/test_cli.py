"""The `clustercockpit` command line: core subcommands, error messages, pending commands."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cc_core.auth.jwt_tokens import load_private_key, load_public_key
from cc_core.cli import build_cli
from cc_core.cli.unavailable import FROM_PLUGINS

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_FLAGS = [
    "serve",
    "init",
    "init-db",
    "migrate-db",
    "revert-db",
    "optimize-db",
    "add-user",
    "del-user",
    "jwt",
    "sync-ldap",
    "apply-tags",
    "import-job",
    "gen-keypair",
    "convert-pem-pubkey",
    "archive",
    "version",
    "plugins",
]


def run(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    old = Path.cwd()
    if cwd:
        os.chdir(cwd)
    try:
        r = runner.invoke(build_cli(), list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return r.exit_code, r.stdout, r.stderr


def test_every_upstream_flag_has_a_subcommand() -> None:
    commands = set(build_cli().commands)
    assert set(UPSTREAM_FLAGS) <= commands


def test_readme_maps_every_upstream_flag() -> None:
    readme = (ROOT / "README.md").read_text()
    for flag in (
        "-server",
        "-dev",
        "-init",
        "-init-db",
        "-migrate-db",
        "-revert-db",
        "-optimize-db",
        "-add-user",
        "-del-user",
        "-jwt",
        "-sync-ldap",
        "-apply-tags",
        "-import-job",
        "-version",
        "-loglevel",
        "-logdate",
        "-config",
    ):
        assert f"| `{flag}`" in readme or f"| `{flag} " in readme, flag


def test_version() -> None:
    code, out, _ = run("version")
    assert code == 0
    assert out.startswith("clustercockpit ") and "job archive version 3" in out


def test_plugins_lists_every_shipped_plugin() -> None:
    code, out, _ = run("plugins", "--json")
    assert code == 0
    listing = json.loads(out)
    dists = {p["distribution"] for p in listing if not p["builtin"]}
    assert dists == {
        "clustercockpit-metric-ccms",
        "clustercockpit-metric-prometheus",
        "clustercockpit-metric-influx",
        "clustercockpit-archive-fs",
        "clustercockpit-archive-s3",
        "clustercockpit-auth-ldap",
        "clustercockpit-auth-oidc",
        "clustercockpit-scheduler-slurm",
    }
    code, out, _ = run("plugins")
    assert code == 0 and "clustercockpit-archive-s3" in out


def test_gen_keypair_writes_upstream_format() -> None:
    code, out, _ = run("gen-keypair")
    assert code == 0
    lines = dict(line.split("=", 1) for line in out.strip().splitlines())
    pub = base64.b64decode(lines["JWT_PUBLIC_KEY"])
    priv = base64.b64decode(lines["JWT_PRIVATE_KEY"])
    assert len(pub) == 32 and len(priv) == 64 and priv[32:] == pub  # Go's ed25519.PrivateKey layout
    derived = load_private_key(lines["JWT_PRIVATE_KEY"]).public_key()
    assert derived.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == pub
    load_public_key(lines["JWT_PUBLIC_KEY"])


def test_convert_pem_pubkey(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    code, out, _ = run("convert-pem-pubkey", str(pem))
    assert code == 0
    raw = base64.b64decode(out.strip().split("=", 1)[1])
    assert raw == key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    bad = tmp_path / "bad.pem"
    bad.write_text("hello")
    code, _, err = run("convert-pem-pubkey", str(bad))
    assert code == 1 and str(bad) in err and "not a PEM public key" in err


def test_init_creates_a_site_and_refuses_twice(tmp_path: Path) -> None:
    code, out, _ = run("init", "--dir", str(tmp_path))
    assert code == 0, out
    assert (tmp_path / "config.json").is_file()
    assert (tmp_path / "var" / "job-archive" / "version.txt").read_text() == "3\n"
    env = (tmp_path / ".env").read_text()
    assert "JWT_PUBLIC_KEY=" in env and "SESSION_KEY=" in env
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0  # secrets are private
    code, _, err = run("init", "--dir", str(tmp_path))
    assert code == 1 and "already exists" in err


def test_config_error_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"main": {"addr": 8080}}')
    proc = subprocess.run(
        [sys.executable, "-m", "cc_core", "--config", str(tmp_path / "config.json"), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error: {tmp_path / 'config.json'}: $.main.addr: Expected `str`, got `int`"
    )


def test_plugin_placeholder_names_the_extra() -> None:
    """Without its plugin a plugin's command says which extra to install (the core's placeholder)."""
    import click

    from cc_core.cli.unavailable import COMMANDS

    placeholders = {c.name: c for c in COMMANDS if getattr(c, "_cc_placeholder", False)}
    assert set(placeholders) == set(FROM_PLUGINS)
    group = click.Group(commands=list(placeholders.values()))
    result = CliRunner().invoke(group, ["cleanup-checkpoints"])
    assert result.exit_code == 2
    assert 'pip install "clustercockpit[ccms]"' in result.output


def test_plugin_command_replaces_its_placeholder() -> None:
    """With metric-ccms installed, `cleanup-checkpoints` is the plugin's command, not the placeholder."""
    from cc_core.cli import add_plugin_commands, build_cli

    group = build_cli()
    add_plugin_commands(group)
    cmd = group.commands["cleanup-checkpoints"]
    assert not getattr(cmd, "_cc_placeholder", False)
    assert cmd._cc_distribution == "clustercockpit-metric-ccms"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("loglevel", ["info", "warn"])
def test_serve_runs_and_shuts_down_gracefully(tmp_path: Path, loglevel: str) -> None:
    """Also: ``--loglevel`` holds for the whole run (the web framework must not reset it at start-up)."""
    code, _, _ = run("init", "--dir", str(tmp_path))
    assert code == 0
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cc_core",
            "--config",
            str(tmp_path / "config.json"),
            "--loglevel",
            loglevel,
            "serve",
            "--addr",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert r.headers["x-frame-options"] == "DENY"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        # uvicorn re-raises the signal after its graceful shutdown, so the exit status says SIGTERM.
        assert proc.returncode in (0, -signal.SIGTERM), out
        if loglevel == "info":
            assert "INFO cc_core.app: shutdown complete" in out, out
        else:
            assert "shutdown complete" not in out and "INFO" not in out, out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_refuses_without_session_key(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / ".env").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "SESSION_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "cc_core", "--config", str(tmp_path / "config.json"), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "SESSION_KEY is not set" in proc.stderr and "Traceback" not in proc.stderr
